// Turns a RunResult into the ordered list of outputs to deliver: every file of every output node
// (subfolders kept), latents where ComfyUI lists them, text outputs, and temp previews only when asked.
import type { OutputFile, RunResult } from '../comfy-types.ts';
import type { OutputType } from './job-output.ts';

/** One output to deliver. */
export interface PlannedOutput {
  index: number;
  nodeId: string;
  type: OutputType;
  preview: boolean;
  file?: { filename: string; subfolder: string; type: string };
  text?: string;
}

const KINDS = new Set<OutputType>(['image', 'video', 'audio', 'text', 'file', 'latent']);

function isFileRef(v: unknown): v is { filename: string; subfolder?: string; type?: string } {
  return v !== null && typeof v === 'object' && typeof (v as { filename?: unknown }).filename === 'string';
}

/** The outputs of a run, in node order, numbered. */
export function planOutputs(result: RunResult, options: { includePreviews?: boolean }): PlannedOutput[] {
  const planned: PlannedOutput[] = [];
  const seen = new Set<string>();
  const add = (
    nodeId: string,
    kind: string,
    file: OutputFile | { filename: string; subfolder: string; type: string },
  ) => {
    const key = `${nodeId}\0${file.type}\0${file.subfolder}\0${file.filename}`;
    if (seen.has(key)) return;
    seen.add(key);
    const preview = file.type === 'temp';
    if (preview && !options.includePreviews) return;
    planned.push({
      index: planned.length,
      nodeId,
      type: file.filename.endsWith('.latent')
        ? 'latent'
        : KINDS.has(kind as OutputType)
          ? (kind as OutputType)
          : 'file',
      preview,
      file: { filename: file.filename, subfolder: file.subfolder ?? '', type: file.type ?? 'output' },
    });
  };
  for (const f of result.outputs) add(f.nodeId, f.kind, f);
  // Latents are files too (SaveLatent lists them under `latents`); the client may not report them.
  for (const [nodeId, output] of Object.entries(result.rawOutputs ?? {})) {
    const latents = (output as { latents?: unknown }).latents;
    if (!Array.isArray(latents)) continue;
    for (const l of latents)
      if (isFileRef(l))
        add(nodeId, 'latent', {
          filename: l.filename,
          subfolder: l.subfolder ?? '',
          type: l.type ?? 'output',
        });
  }
  for (const t of result.texts ?? [])
    planned.push({ index: planned.length, nodeId: t.nodeId, type: 'text', preview: false, text: t.text });
  return planned;
}
