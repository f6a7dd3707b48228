// ComfyUI's WebSocket messages: the typed union of every JSON message type, and the parsers of
// text frames (JSON) and binary frames (previews with and without metadata, text).
import type { PreviewFrame, TextFrame } from './types.ts';

/** Node state inside a `progress_state` snapshot. */
export interface NodeProgressState {
  value: number;
  max: number;
  state: 'running' | 'finished' | 'error' | string;
  node_id: string;
  prompt_id: string;
  display_node_id?: string;
  parent_node_id?: string | null;
  real_node_id?: string;
}

/** Every JSON message ComfyUI sends, typed by `type`; unknown types arrive as `custom`. */
export type ComfyMessage =
  | { type: 'status'; data: { status: { exec_info: { queue_remaining: number } }; sid?: string } }
  | { type: 'feature_flags'; data: Record<string, unknown> }
  | { type: 'execution_start'; data: { prompt_id: string; timestamp?: number } }
  | { type: 'execution_cached'; data: { nodes: string[]; prompt_id: string; timestamp?: number } }
  | { type: 'executing'; data: { node: string | null; display_node?: string; prompt_id?: string } }
  | { type: 'progress'; data: { value: number; max: number; prompt_id?: string; node?: string } }
  | { type: 'progress_state'; data: { prompt_id: string; nodes: Record<string, NodeProgressState> } }
  | {
      type: 'executed';
      data: { node: string; display_node?: string; output: Record<string, unknown>; prompt_id: string };
    }
  | { type: 'execution_success'; data: { prompt_id: string; timestamp?: number } }
  | { type: 'execution_error'; data: ExecutionErrorData }
  | {
      type: 'execution_interrupted';
      data: {
        prompt_id: string;
        node_id?: string;
        node_type?: string;
        executed?: string[];
        timestamp?: number;
      };
    }
  | {
      type: 'logs';
      data: { entries: Array<{ t: string; m: string }>; size?: { cols: number; rows: number } };
    }
  | { type: 'custom'; name: string; data: unknown };

/** Data of `execution_error`. */
export interface ExecutionErrorData {
  prompt_id: string;
  node_id: string;
  node_type: string;
  executed?: string[];
  exception_message: string;
  exception_type: string;
  traceback: string[];
  current_inputs?: Record<string, unknown>;
  current_outputs?: unknown[];
  timestamp?: number;
  [key: string]: unknown;
}

/** Message types whose `data.prompt_id` routes them to one run. */
export type PromptMessage = Exclude<ComfyMessage, { type: 'status' | 'feature_flags' | 'logs' | 'custom' }>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const optString = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string';

/**
 * Parses one text frame. Returns undefined for frames that are not a `{type, data}` JSON object
 * or whose known type has malformed fields (the caller logs and drops them).
 */
export function parseTextMessage(text: string): ComfyMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(raw) || !isString(raw.type)) return undefined;
  const d = raw.data;
  switch (raw.type) {
    case 'status': {
      if (!isObject(d) || !isObject(d.status) || !isObject(d.status.exec_info)) return undefined;
      const q = d.status.exec_info.queue_remaining;
      if (typeof q !== 'number' || !optString(d.sid)) return undefined;
      return raw as ComfyMessage;
    }
    case 'feature_flags':
      return isObject(d) ? (raw as ComfyMessage) : undefined;
    case 'execution_start':
    case 'execution_success':
      return isObject(d) && isString(d.prompt_id) ? (raw as ComfyMessage) : undefined;
    case 'execution_cached':
      return isObject(d) && isString(d.prompt_id) && Array.isArray(d.nodes) && d.nodes.every(isString)
        ? (raw as ComfyMessage)
        : undefined;
    case 'executing':
      return isObject(d) && optString(d.node) && optString(d.prompt_id) && optString(d.display_node)
        ? ({ type: 'executing', data: { ...d, node: d.node ?? null } } as ComfyMessage)
        : undefined;
    case 'progress':
      return isObject(d) && typeof d.value === 'number' && typeof d.max === 'number' && optString(d.prompt_id)
        ? (raw as ComfyMessage)
        : undefined;
    case 'progress_state':
      return isObject(d) && isString(d.prompt_id) && isObject(d.nodes) ? (raw as ComfyMessage) : undefined;
    case 'executed':
      return isObject(d) && isString(d.node) && isString(d.prompt_id) && isObject(d.output)
        ? (raw as ComfyMessage)
        : undefined;
    case 'execution_error':
      if (!isObject(d) || !isString(d.prompt_id)) return undefined;
      return {
        type: 'execution_error',
        data: {
          ...d,
          prompt_id: d.prompt_id,
          node_id: String(d.node_id ?? ''),
          node_type: String(d.node_type ?? ''),
          exception_message: String(d.exception_message ?? ''),
          exception_type: String(d.exception_type ?? ''),
          traceback: Array.isArray(d.traceback) ? d.traceback.map(String) : [],
        },
      };
    case 'execution_interrupted':
      return isObject(d) && isString(d.prompt_id) ? (raw as ComfyMessage) : undefined;
    case 'logs':
      return isObject(d) && Array.isArray(d.entries) ? (raw as ComfyMessage) : undefined;
    default:
      return { type: 'custom', name: raw.type, data: d };
  }
}

/** The prompt id a message is about, if it names one. */
export function messagePromptId(message: ComfyMessage): string | undefined {
  if (message.type === 'custom' || message.type === 'status' || message.type === 'feature_flags') {
    return undefined;
  }
  if (message.type === 'logs') return undefined;
  const id = (message.data as { prompt_id?: unknown }).prompt_id;
  return typeof id === 'string' ? id : undefined;
}

/** True for an `execution_error` that ComfyUI does not treat as terminal (a blocked input). */
export function isBlockedExecution(data: { exception_type?: unknown }): boolean {
  return data.exception_type === 'ExecutionBlocked';
}

/** Binary frame event types (§2.5). */
export const BinaryEventType = {
  PreviewImage: 1,
  UnencodedPreviewImage: 2,
  Text: 3,
  PreviewImageWithMetadata: 4,
} as const;

/** A decoded binary frame. */
export type BinaryFrame =
  | { kind: 'preview'; frame: PreviewFrame }
  | { kind: 'text'; frame: TextFrame }
  | { kind: 'unknown'; eventType: number; data: Buffer };

const IMAGE_FORMATS: Record<number, string> = { 1: 'image/jpeg', 2: 'image/png' };

/**
 * Decodes one binary frame. Throws a RangeError for frames too short for their own header
 * (the caller drops them); unknown event types are returned as `unknown`.
 * `textWithPromptId` selects the negotiated TEXT layout that carries the prompt id.
 */
export function decodeBinaryFrame(buf: Buffer, textWithPromptId = false): BinaryFrame {
  if (buf.length < 4) throw new RangeError(`binary frame of ${buf.length} bytes has no event type`);
  const eventType = buf.readUInt32BE(0);
  switch (eventType) {
    case BinaryEventType.PreviewImage: {
      if (buf.length < 8) throw new RangeError('preview frame without image format');
      const format = buf.readUInt32BE(4);
      return {
        kind: 'preview',
        frame: { mime: IMAGE_FORMATS[format] ?? 'application/octet-stream', data: buf.subarray(8) },
      };
    }
    case BinaryEventType.PreviewImageWithMetadata: {
      if (buf.length < 8) throw new RangeError('preview frame without metadata length');
      const len = buf.readUInt32BE(4);
      if (buf.length < 8 + len) throw new RangeError(`preview metadata of ${len} bytes overruns the frame`);
      let meta: unknown;
      try {
        meta = JSON.parse(buf.toString('utf8', 8, 8 + len));
      } catch {
        throw new RangeError('preview metadata is not JSON');
      }
      const m = isObject(meta) ? meta : {};
      const frame: PreviewFrame = {
        mime: isString(m.image_type) ? m.image_type : 'application/octet-stream',
        data: buf.subarray(8 + len),
      };
      if (isString(m.prompt_id)) frame.promptId = m.prompt_id;
      if (isString(m.node_id)) frame.nodeId = m.node_id;
      if (isString(m.display_node_id)) frame.displayNodeId = m.display_node_id;
      return { kind: 'preview', frame };
    }
    case BinaryEventType.Text: {
      let offset = 4;
      const readString = (): string => {
        if (buf.length < offset + 4) throw new RangeError('text frame truncated');
        const n = buf.readUInt32BE(offset);
        if (buf.length < offset + 4 + n) throw new RangeError('text frame truncated');
        const s = buf.toString('utf8', offset + 4, offset + 4 + n);
        offset += 4 + n;
        return s;
      };
      const promptId = textWithPromptId ? readString() : undefined;
      const nodeId = readString();
      const frame: TextFrame = { nodeId, text: buf.toString('utf8', offset) };
      if (promptId !== undefined && promptId !== '') frame.promptId = promptId;
      return { kind: 'text', frame };
    }
    default:
      return { kind: 'unknown', eventType, data: buf.subarray(4) };
  }
}

/** Builds a binary preview frame (the inverse of decodeBinaryFrame; used by tests and tools). */
export function encodePreviewFrame(frame: PreviewFrame, withMetadata: boolean): Buffer {
  if (!withMetadata) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(BinaryEventType.PreviewImage, 0);
    head.writeUInt32BE(frame.mime === 'image/png' ? 2 : 1, 4);
    return Buffer.concat([head, frame.data]);
  }
  const meta = Buffer.from(
    JSON.stringify({
      node_id: frame.nodeId ?? null,
      prompt_id: frame.promptId ?? null,
      display_node_id: frame.displayNodeId ?? frame.nodeId ?? null,
      parent_node_id: null,
      real_node_id: frame.nodeId ?? null,
      image_type: frame.mime,
    }),
  );
  const head = Buffer.alloc(8);
  head.writeUInt32BE(BinaryEventType.PreviewImageWithMetadata, 0);
  head.writeUInt32BE(meta.length, 4);
  return Buffer.concat([head, meta, frame.data]);
}
