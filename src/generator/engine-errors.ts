/** A model the engine cannot turn into a stream (or a stream extraction cannot model), in words. */
export class ModelError extends Error {}
