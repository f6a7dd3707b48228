// The slices of the client SDK (src/comfy) that io uses: its data types and a Pick<> of the client's
// one contract, so `tsc` checks io against the real client and a test passes any object of that shape.
import type { ComfyClientContract, RunResult as ComfyRunResult } from '../comfy/index.ts';

export type { ApiPrompt, OutputFile } from '../comfy/index.ts';

/** One node definition from `/object_info`, only the parts io reads (comfy's NodeDef fits). */
export interface NodeDef {
  input?: {
    required?: Record<string, unknown>;
    optional?: Record<string, unknown>;
    hidden?: Record<string, unknown>;
  };
  output_node?: boolean;
  [key: string]: unknown;
}

/** What io reads of a finished run. */
export type RunResult = Pick<ComfyRunResult, 'promptId' | 'outputs' | 'texts' | 'rawOutputs'>;

/** The client calls io makes: upload an input, stream an output. */
export type IoComfyClient = Pick<ComfyClientContract, 'baseUrl' | 'uploadImage' | 'view'>;
