const IO_WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory (give a stream file)',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
};

/** An I/O error in words: "no such file or directory" rather than ENOENT. */
export function ioErrorWords(err: NodeJS.ErrnoException): string {
  return (err.code && IO_WORDS[err.code]) ?? err.code ?? err.message;
}
