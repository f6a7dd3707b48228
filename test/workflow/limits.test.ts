// The converter's size bound and its cost: nested subgraphs are refused from their definitions
// before anything is expanded, the bound holds while expanding, and the work inside the bound grows
// linearly (text replacement and Reroute chains used to cost O(n²)).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_NODES, toApiPrompt, WorkflowTooLargeError } from '../../src/workflow/index.ts';
import {
  nestedSubgraphWorkflow,
  replacementHeavyWorkflow,
  rerouteChainWorkflow,
} from '../support/attack-workflows.ts';
import { defs } from './build.ts';

function tooLarge(fn: () => unknown): WorkflowTooLargeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof WorkflowTooLargeError) return err;
    throw err;
  }
  assert.fail('expected WorkflowTooLargeError');
}

/** CPU milliseconds of one call (after a warm-up call). */
/** CPU ms of one call: the least of three after a warm-up (a GC or JIT tier-up during one call is noise, not growth). */
function cpuMs(fn: () => unknown): number {
  fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const start = process.cpuUsage();
    fn();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best;
}

describe('workflow size bound', () => {
  it('refuses 6 and 7 levels of 10 nested subgraph instances from the definitions, in milliseconds', () => {
    for (const [levels, nodes] of [
      [6, 1_111_112],
      [7, 11_111_112],
    ] as const) {
      const wf = nestedSubgraphWorkflow(levels);
      const start = process.cpuUsage();
      const err = tooLarge(() => toApiPrompt(wf, defs));
      const used = process.cpuUsage(start);
      assert.equal(err.code, 'workflow_too_large');
      assert.equal(err.nodes, nodes);
      assert.equal(err.limit, DEFAULT_MAX_NODES);
      assert.deepEqual(err.issues[0]?.nodes, nodes);
      // The unbounded converter took about a minute and 1.8 GB for 6 levels.
      assert.ok((used.user + used.system) / 1000 < 500, `took ${(used.user + used.system) / 1000} ms`);
    }
  });

  it('counts an instance once plus its contents, not muted or bypassed contents, and honours maxNodes', () => {
    const wf = nestedSubgraphWorkflow(2, 3); // root: instance + PreviewAny; 3 instances of 3 nodes
    const r = toApiPrompt(wf, defs, { maxNodes: 1 + 1 + 3 * (1 + 3), unresolved: 'partial' });
    assert.equal(Object.keys(r.prompt).filter((id) => r.prompt[id]?.class_type === 'EmptyImage').length, 9);
    assert.equal(tooLarge(() => toApiPrompt(wf, defs, { maxNodes: 13 })).nodes, 14);
    (wf.nodes as Array<{ mode: number }>)[0]!.mode = 2;
    const muted = toApiPrompt(wf, defs, { maxNodes: 2, unresolved: 'partial' });
    assert.equal(Object.keys(muted.prompt).length, 1);
    assert.throws(() => toApiPrompt(wf, defs, { maxNodes: Number.NaN }), { code: 'invalid_option' });
  });

  it('enforces the bound while expanding legacy group nodes too', () => {
    const inner = Array.from({ length: 40 }, () => ({
      type: 'EmptyImage',
      inputs: [],
      outputs: [],
      widgets_values: [8, 8, 1, 0],
    }));
    const wf = {
      version: 0.4,
      nodes: Array.from({ length: 3 }, (_, i) => ({
        id: i + 1,
        type: 'workflow>Forty',
        mode: 0,
        inputs: [],
        outputs: [],
      })),
      links: [],
      extra: { groupNodes: { Forty: { nodes: inner, links: [], external: [] } } },
    };
    assert.equal(tooLarge(() => toApiPrompt(wf, defs, { maxNodes: 100 })).limit, 100);
    assert.equal(Object.keys(toApiPrompt(wf, defs, { maxNodes: 123 }).prompt).length, 120);
  });
});

describe('conversion cost inside the bound', () => {
  it('grows linearly with text replacement in every save node', () => {
    const small = cpuMs(() => toApiPrompt(replacementHeavyWorkflow(500), defs));
    const big = cpuMs(() => toApiPrompt(replacementHeavyWorkflow(4000), defs));
    console.log(`text replacement: 500 nodes ${small.toFixed(1)} ms, 4,000 nodes ${big.toFixed(1)} ms CPU`);
    // Linear: ~8x. The per-level scan it replaced made this ~64x (1.0-1.8 s for 5,000 nodes).
    assert.ok(big < small * 24 + 20, `8x the nodes cost ${(big / small).toFixed(1)}x`);
  });

  it('walks a long Reroute chain once, however many nodes read its end', () => {
    const small = cpuMs(() => toApiPrompt(rerouteChainWorkflow(250, 250), defs));
    const big = cpuMs(() => toApiPrompt(rerouteChainWorkflow(2000, 2000), defs));
    console.log(`reroute chain: 250x250 ${small.toFixed(1)} ms, 2,000x2,000 ${big.toFixed(1)} ms CPU`);
    // Linear: ~8x; every reader walking the whole chain made it ~64x.
    assert.ok(big < small * 24 + 20, `8x the nodes cost ${(big / small).toFixed(1)}x`);
  });
});
