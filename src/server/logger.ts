// The gateway's pino logger from its settings: JSON to stdout, and with LOG_FILE also to a file —
// pino's own file destination, or, when rotation is configured, the pino-roll transport (a worker
// thread that rolls by size and/or time and keeps a bounded number of old files).
import { resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Config } from '../config.ts';

type LogSettings = Pick<
  Config,
  'logLevel' | 'logFile' | 'logRotateSize' | 'logRotateFrequency' | 'logRotateKeep'
>;

/** A logger and the function that flushes and closes its file (a no-op without LOG_FILE). */
export interface GatewayLogger {
  logger: Logger;
  close(): Promise<void>;
}

const BASE = { service: 'comfy-gateway' };

/** Builds the logger the settings describe. */
export function createLogger(config: LogSettings): GatewayLogger {
  const level = config.logLevel;
  if (!config.logFile) return { logger: pino({ level, base: BASE }), close: async () => {} };
  const file = resolve(config.logFile);
  if (config.logRotateSize || config.logRotateFrequency) {
    const transport = pino.transport({
      targets: [
        { target: 'pino/file', level, options: { destination: 1 } },
        {
          target: 'pino-roll',
          level,
          options: {
            file,
            mkdir: true,
            ...(config.logRotateSize ? { size: config.logRotateSize } : {}),
            ...(config.logRotateFrequency ? { frequency: config.logRotateFrequency } : {}),
            limit: { count: config.logRotateKeep },
          },
        },
      ],
    });
    const logger = pino({ level, base: BASE }, transport);
    return { logger, close: () => endStream(transport) };
  }
  const destination = pino.destination({ dest: file, mkdir: true, sync: false });
  const logger = pino(
    { level, base: BASE },
    pino.multistream([
      { level, stream: process.stdout },
      { level, stream: destination },
    ]),
  );
  return {
    logger,
    close: () =>
      new Promise<void>((done) => {
        destination.flushSync();
        destination.end();
        done();
      }),
  };
}

/** Ends a transport stream and waits (bounded) until its worker wrote everything. */
function endStream(stream: {
  end(): void;
  once(event: 'close', listener: () => void): unknown;
}): Promise<void> {
  return new Promise<void>((done) => {
    const timer = setTimeout(done, 5000);
    timer.unref();
    stream.once('close', () => {
      clearTimeout(timer);
      done();
    });
    stream.end();
  });
}
