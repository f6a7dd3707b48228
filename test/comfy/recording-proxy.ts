// A loopback HTTP proxy for client tests that records what reaches ComfyUI (method, path, headers,
// body) and forwards everything to a simulator, WebSocket upgrades included (raw socket piping), so
// the client under test runs unchanged against `proxy.url`.
import { EventEmitter, once } from 'node:events';
import { Agent, createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

/** One request as the proxy saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  upgrade: boolean;
}

/** A running recording proxy; emits `recorded` (RecordedRequest) for every request. */
export class RecordingProxy extends EventEmitter<{ recorded: [RecordedRequest] }> {
  readonly url: string;
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #tunnels = new Set<Socket>();
  #closing: Promise<void> | undefined;

  private constructor(server: Server, url: string) {
    super();
    this.#server = server;
    this.url = url;
  }

  /** Starts a proxy on 127.0.0.1 (port 0) in front of `target` (an http://host:port URL). */
  static async start(target: string): Promise<RecordingProxy> {
    const upstream = new URL(target);
    const host = upstream.hostname;
    const port = Number(upstream.port);
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    const proxy = new RecordingProxy(server, `http://127.0.0.1:${address.port}`);

    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        proxy.#record({
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: body.toString('utf8'),
          upgrade: false,
        });
        const up = request(
          { host, port, method: req.method, path: req.url, headers: req.headers, agent: proxy.#agent },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        res.on('close', () => up.destroy());
        up.end(body);
      });
    });

    server.on('upgrade', (req, client: Socket, head: Buffer) => {
      proxy.#record({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: '',
        upgrade: true,
      });
      const up = connect(port, host);
      proxy.#tunnels.add(client).add(up);
      const drop = () => {
        client.destroy();
        up.destroy();
        proxy.#tunnels.delete(client);
        proxy.#tunnels.delete(up);
      };
      client.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      up.on('connect', () => {
        let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
        for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
          raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
        up.write(`${raw}\r\n`);
        if (head.length > 0) up.write(head);
        client.pipe(up);
        up.pipe(client);
      });
    });
    return proxy;
  }

  /** Recorded plain HTTP requests matching `method` and a path prefix. */
  find(method: string, pathPrefix: string): RecordedRequest[] {
    return this.requests.filter((r) => !r.upgrade && r.method === method && r.path.startsWith(pathPrefix));
  }

  /** Resolves with the first recorded request (already seen or future) matching `match`, within `ms`. */
  async waitFor(match: (r: RecordedRequest) => boolean, ms = 5000): Promise<RecordedRequest> {
    const seen = this.requests.find(match);
    if (seen) return seen;
    const signal = AbortSignal.timeout(ms);
    for await (const [r] of EventEmitter.on(this, 'recorded', { signal })) {
      if (match(r as RecordedRequest)) return r as RecordedRequest;
    }
    throw new Error('recorded stream ended');
  }

  /** Closes the listener, every forwarded connection and tunnel. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = once(this.#server, 'close');
      this.#server.close();
      this.#server.closeAllConnections();
      for (const s of this.#tunnels) s.destroy();
      this.#tunnels.clear();
      this.#agent.destroy();
      await closed;
    })();
    return this.#closing;
  }

  #record(r: RecordedRequest): void {
    this.requests.push(r);
    this.emit('recorded', r);
  }
}
