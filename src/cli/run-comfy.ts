// The `run` target that talks straight to one ComfyUI server through the SDK: converts UI
// workflows with the server's /object_info, uploads `--input` files, runs the prompt with live
// progress and streams every output into the output folder.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ApiPrompt, ComfyClient, type OutputFile, type RunEvent } from '../comfy/index.ts';
import { detectFormat, toApiPrompt } from '../workflow/index.ts';
import {
  applyAssignments,
  checkNodes,
  type RunContext,
  type RunPlan,
  type RunTarget,
  RunUsageError,
  remaining,
  safeOutputPath,
} from './run-plan.ts';
import { fmtMs, type Reporter, type RunOutcome } from './run-reporter.ts';

/** Runs the plan straight against one ComfyUI server. */
export class ComfyTarget implements RunTarget {
  readonly #client: ComfyClient;

  constructor(server: string) {
    this.#client = new ComfyClient({ baseUrl: server, historyPollIntervalMs: 1000 });
  }

  describe(): string {
    return this.#client.baseUrl;
  }

  async execute(plan: RunPlan, { reporter, signal, deadline }: RunContext): Promise<RunOutcome> {
    const client = this.#client;
    let prompt: ApiPrompt;
    const format = detectFormat(plan.workflow);
    if (format === 'ui') {
      reporter.line('UI workflow: converting with the server’s /object_info');
      const defs = await client.getObjectInfo({ signal });
      const converted = toApiPrompt(plan.workflow, defs as Parameters<typeof toApiPrompt>[1]);
      for (const w of converted.warnings) reporter.line(`  warning ${w.code}: ${w.message}`);
      prompt = converted.prompt as ApiPrompt;
    } else if (format === 'api') {
      prompt = plan.workflow as ApiPrompt;
    } else {
      throw new RunUsageError(`${plan.workflowPath} is neither an API prompt nor a UI workflow`);
    }
    // Check every node id before uploading anything.
    checkNodes(prompt, [...plan.sets, ...plan.inputs]);
    const uploads: Array<{ nodeId: string; input: string; value: unknown }> = [];
    for (const input of plan.inputs) {
      const data = await readFile(input.path, { signal });
      const uploaded = await client.uploadImage(data, { filename: basename(input.path), signal });
      const name = uploaded.subfolder ? `${uploaded.subfolder}/${uploaded.name}` : uploaded.name;
      reporter.line(`uploaded ${basename(input.path)} → ${name}`);
      uploads.push({ nodeId: input.nodeId, input: input.input, value: name });
    }
    prompt = applyAssignments(prompt, [...plan.sets, ...uploads]);
    reporter.setNodeCount(Object.keys(prompt).length);
    const result = await client.run(prompt, {
      signal,
      timeoutMs: remaining(deadline),
      onEvent: (event) => showEvent(reporter, event, prompt),
    });
    reporter.done();
    const saved: string[] = [];
    await mkdir(plan.outDir, { recursive: true });
    await client.downloadOutputs(
      result,
      async (file: OutputFile, stream: Readable) => {
        const path = safeOutputPath(plan.outDir, file);
        await mkdir(dirname(path), { recursive: true });
        await pipeline(stream, createWriteStream(path));
        saved.push(path);
      },
      { signal },
    );
    const s = result.stats;
    const details = [`queue wait ${fmtMs(s.queueWaitMs)}, execution ${fmtMs(s.executionMs)}`];
    if (s.cachedNodes.length > 0) details.push(`cached nodes: ${s.cachedNodes.join(', ')}`);
    for (const [id, t] of Object.entries(s.nodes)) {
      details.push(
        `node ${id}: ${fmtMs(t.finishedAt === undefined ? undefined : t.finishedAt - t.startedAt)}`,
      );
    }
    for (const t of result.texts) details.push(`text from node ${t.nodeId}: ${t.text}`);
    if (result.nodeErrors)
      details.push(`warning: some outputs were dropped at validation: ${JSON.stringify(result.nodeErrors)}`);
    return { heading: `prompt ${result.promptId} finished`, details, saved };
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** Feeds one SDK run event to the reporter. */
function showEvent(reporter: Reporter, event: RunEvent, prompt: ApiPrompt): void {
  switch (event.type) {
    case 'queued':
      reporter.line(`queued as #${event.number} (${event.promptId})`);
      break;
    case 'cached':
      reporter.cached(event.nodes);
      break;
    case 'executing':
      reporter.nodeStarted(event.nodeId, event.classType ?? prompt[event.nodeId]?.class_type ?? '?');
      break;
    case 'progress':
      reporter.step(event.value, event.max);
      break;
    default:
      break;
  }
}
