// Fault injection knobs (the contract shared with other modules' tests), per instance and per prompt
// (`extra_data.simulator`, snake_case), and their parsing from HTTP bodies.
import { toNumber } from './py-json.ts';

/** Instance-wide faults; merged by setFaults, reset by clearFaults. */
export interface SimulatorFaults {
  nodeDelayMs: number;
  failAtNode: string | null;
  hang: boolean;
  neverStart: boolean;
  dropWebSocketAtNode: string | null;
  httpFailures: Array<{ path: string; status: number; times: number }>;
  httpDelayMs: number;
  historyDelayMs: number;
  /** Extension: the Python exception the failing node raises (default RuntimeError). */
  failException: { type: string; message: string } | null;
}

/** Faults with nothing injected (node delay from the instance options). */
export function defaultFaults(nodeDelayMs: number): SimulatorFaults {
  return {
    nodeDelayMs,
    failAtNode: null,
    hang: false,
    neverStart: false,
    dropWebSocketAtNode: null,
    httpFailures: [],
    httpDelayMs: 0,
    historyDelayMs: 0,
    failException: null,
  };
}

/** Per-prompt knobs read from `extra_data.simulator`. */
export interface PromptFaults {
  nodeDelayMs?: number;
  failAtNode?: string;
  hang?: boolean;
  neverStart?: boolean;
  dropWsAtNode?: string;
}

/** Reads `extra_data.simulator` (ignores anything malformed). */
export function promptFaults(extraData: Record<string, unknown>): PromptFaults {
  const s = extraData.simulator;
  if (!s || typeof s !== 'object') return {};
  const o = s as Record<string, unknown>;
  const out: PromptFaults = {};
  const d = toNumber(o.node_delay_ms);
  if (d !== undefined && d >= 0) out.nodeDelayMs = d;
  if (o.fail_at_node !== undefined && o.fail_at_node !== null) out.failAtNode = String(o.fail_at_node);
  if (o.hang === true) out.hang = true;
  if (o.never_start === true) out.neverStart = true;
  if (o.drop_ws_at_node !== undefined && o.drop_ws_at_node !== null)
    out.dropWsAtNode = String(o.drop_ws_at_node);
  return out;
}

/** Validates a (partial) faults object from JSON; throws a message naming the bad field. */
export function parseFaults(body: unknown): Partial<SimulatorFaults> {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new Error('faults must be a JSON object');
  const b = body as Record<string, unknown>;
  const out: Partial<SimulatorFaults> = {};
  const nonNeg = (k: string): number => {
    const v = toNumber(b[k]);
    if (v === undefined || v < 0 || !Number.isFinite(v))
      throw new Error(`${k} must be a non-negative number`);
    return v;
  };
  const idOrNull = (k: string): string | null => {
    const v = b[k];
    if (v === null) return null;
    if (typeof v === 'string' || typeof v === 'number') return String(v);
    throw new Error(`${k} must be a node id string or null`);
  };
  const bool = (k: string): boolean => {
    if (typeof b[k] !== 'boolean') throw new Error(`${k} must be a boolean`);
    return b[k] as boolean;
  };
  for (const k of Object.keys(b)) {
    switch (k) {
      case 'nodeDelayMs':
      case 'httpDelayMs':
      case 'historyDelayMs':
        out[k] = nonNeg(k);
        break;
      case 'failAtNode':
      case 'dropWebSocketAtNode':
        out[k] = idOrNull(k);
        break;
      case 'hang':
      case 'neverStart':
        out[k] = bool(k);
        break;
      case 'httpFailures': {
        const list = b[k];
        if (!Array.isArray(list)) throw new Error('httpFailures must be an array');
        out.httpFailures = list.map((f, i) => {
          const o = f as Record<string, unknown>;
          const status = toNumber(o?.status);
          const times = toNumber(o?.times ?? 1);
          if (
            !o ||
            typeof o.path !== 'string' ||
            status === undefined ||
            status < 100 ||
            status > 599 ||
            times === undefined ||
            times < 0
          ) {
            throw new Error(`httpFailures[${i}] must be {path: string, status: 100-599, times: >= 0}`);
          }
          return { path: o.path, status: Math.trunc(status), times: Math.trunc(times) };
        });
        break;
      }
      case 'failException': {
        const v = b[k] as Record<string, unknown> | null;
        if (v === null) out.failException = null;
        else if (v && typeof v.type === 'string' && typeof v.message === 'string')
          out.failException = { type: v.type, message: v.message };
        else throw new Error('failException must be {type: string, message: string} or null');
        break;
      }
      default:
        throw new Error(`unknown fault: ${k}`);
    }
  }
  return out;
}
