// Starts a real S3-compatible server (s3rver, a devDependency) in a child process for tests, so its
// memory does not count against the process under test. Loopback only, port 0, a temp directory.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A running S3-compatible server. */
export interface S3TestServer {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
}

// s3rver 3.7 answers a PUT once its hashing stream saw the last byte, while up to two 16 KiB
// chunks may still be on their way to the object's file: a HEAD right after it (as the output
// storage's verification does) could report the object short, and fail a job that stored it whole.
// Its putObject is replaced by one that answers once the file is written.
const CHILD = `
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
FilesystemStore.prototype.putObject = async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  const md5 = createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  const count = new Transform({
    transform(chunk, _encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  await pipeline(content, count, createWriteStream(objectPath));
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};
const [dir, bucket] = process.argv.slice(1);
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
const info = await server.run();
process.stdout.write(JSON.stringify({ port: info.port }) + '\\n');
process.stdin.on('end', async () => { await server.close(); process.exit(0); });
process.stdin.resume();
`;

/** Starts s3rver with one bucket; close() stops it and removes its data. */
export async function startS3(
  options: { bucket?: string; startTimeoutMs?: number } = {},
): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'test-bucket';
  const dir = await mkdtemp(join(tmpdir(), 's3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir, bucket], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: process.cwd(),
  });
  const lines = createInterface({ input: child.stdout! });
  const signal = AbortSignal.timeout(options.startTimeoutMs ?? 15_000);
  let port: number;
  try {
    const [line] = (await once(lines, 'line', { signal })) as [string];
    port = (JSON.parse(line) as { port: number }).port;
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    // s3rver accepts this fixed key pair.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async close() {
      if (closed) return;
      closed = true;
      lines.close();
      const exited = once(child, 'exit');
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
