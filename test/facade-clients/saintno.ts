// What the @saintno/comfyui-sdk tests share between the test file and its ComfyPool worker thread:
// the SDK's workflow shape and a CallWrapper run that fails on the wrapper's own failure callback.
import assert from 'node:assert/strict';
import { CallWrapper, type ComfyApi, PromptBuilder } from '@saintno/comfyui-sdk';
import { chainWorkflow } from './helpers.ts';

type NodeData = Record<
  string,
  { class_type: string; inputs: Record<string, unknown>; _meta: { title: string } }
>;

/** An image output as the SDK returns it. */
export interface SdkImage {
  filename: string;
  subfolder: string;
  type: string;
}

/** The workflow with the `_meta.title` the SDK's types ask for. */
export function withMeta(
  workflow: Record<string, { class_type: string; inputs: Record<string, unknown> }>,
): NodeData {
  return Object.fromEntries(
    Object.entries(workflow).map(([id, node]) => [id, { ...node, _meta: { title: node.class_type } }]),
  );
}

/** A PromptBuilder over EmptyImage → `n` ImageInverts → SaveImage, `color` in and `images` out. */
export function builder(prefix: string, color: number, n = 1) {
  return new PromptBuilder(withMeta(chainWorkflow(prefix, 0, n)), ['color'], ['images'])
    .setInputNode('color', '1.inputs.color')
    .setOutputNode('images', '3')
    .input('color', color);
}

/** Runs a CallWrapper and returns its output; throws when the wrapper reports a failure or no result. */
export async function run(api: ComfyApi, wf: ReturnType<typeof builder>) {
  let failure: Error | undefined;
  const out = await new CallWrapper(api, wf)
    .onFailed((err) => {
      failure = err;
    })
    .run();
  assert.equal(failure, undefined, `CallWrapper failed: ${failure?.name} ${failure?.message}`);
  assert.ok(out, 'CallWrapper returned a result');
  return out as { images: { images: SdkImage[] } };
}
