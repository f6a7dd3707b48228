// The one logger contract of the code base: the subset of pino's API the modules call, so a pino
// logger (or a child of one) fits wherever a logger is taken. A ground-floor module: it imports nothing
// and every module may import it; a module that calls fewer methods takes a Pick<> of it.

/** A pino-compatible logger. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: object): Logger;
}
