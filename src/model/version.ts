/** migstream's release, as package.json says (a test keeps the two equal). */
export const MIGSTREAM_VERSION = '0.1.0';
