// The slice of the client SDK's contract (src/comfy) that io needs, written structurally so io can be
// used and tested with any object of that shape (a real ComfyClient fits).
import type { Readable } from 'node:stream';

/** A ComfyUI API-format prompt. */
export type ApiPrompt = Record<
  string,
  { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }
>;

/** One node definition from `/object_info` (only the parts io reads). */
export interface NodeDef {
  input?: {
    required?: Record<string, unknown>;
    optional?: Record<string, unknown>;
    hidden?: Record<string, unknown>;
  };
  output_node?: boolean;
  [key: string]: unknown;
}

/** One file a run produced, as the client SDK reports it. */
export interface OutputFile {
  nodeId: string;
  kind: 'image' | 'video' | 'audio' | 'text' | 'file' | string;
  filename: string;
  subfolder: string;
  type: 'output' | 'temp' | 'input' | string;
}

/** What io reads of a finished run. */
export interface RunResult {
  promptId: string;
  outputs: OutputFile[];
  texts: Array<{ nodeId: string; text: string }>;
  rawOutputs: Record<string, Record<string, unknown>>;
}

/** The client calls io makes: upload an input, stream an output. */
export interface IoComfyClient {
  readonly baseUrl: string;
  uploadImage(
    data: Buffer | Uint8Array | NodeJS.ReadableStream | Blob,
    options: {
      filename: string;
      subfolder?: string;
      type?: 'input' | 'temp' | 'output';
      overwrite?: boolean;
      signal?: AbortSignal;
    },
  ): Promise<{ name: string; subfolder: string; type: string }>;
  view(
    file: { filename: string; subfolder?: string; type?: string },
    options?: { signal?: AbortSignal; range?: string },
  ): Promise<{
    status: number;
    headers: Record<string, string>;
    body: ReadableStream<Uint8Array> | NodeJS.ReadableStream | Readable;
    contentType: string;
    contentLength?: number;
  }>;
}
