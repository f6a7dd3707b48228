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

const CHILD = `
import S3rver from 's3rver';
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
