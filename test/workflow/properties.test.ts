// Property-based checks of graph rewiring (fast-check): any mix of Reroutes and bypassed
// pass-through nodes between a producer and a consumer resolves to the producer; a primitive's
// value reaches every target however it fans out; and the 500-node tiled workflow converts exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { tileWorkflow } from '../../bench/convert.ts';
import { toApiPrompt } from '../../src/workflow/index.ts';
import { basicNodes, defs, type LinkTuple, node, workflow } from './build.ts';
import { comparePrompts } from './compare.ts';

describe('rewiring properties', () => {
  it('a chain of Reroutes and bypassed LATENT nodes between KSampler and VAEDecode resolves to the KSampler', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('reroute', 'bypass', 'muted-side'), { maxLength: 12 }),
        (chain) => {
          const { nodes, links } = basicNodes();
          // Replace link 7 (3 → 8) by 3 → c1 → c2 → … → 8.
          const ls = links.filter((l) => l[0] !== 7);
          let from = 3;
          let nextLink = 100;
          let id = 100;
          for (const kind of chain) {
            const nid = id++;
            const lid = nextLink++;
            ls.push([lid, from, 0, nid, 0, 'LATENT']);
            if (kind === 'reroute')
              nodes.push(node(nid, 'Reroute', { inputs: [['', '*', lid]], outputs: [['', 'LATENT']] }));
            else {
              nodes.push(
                node(nid, 'LatentUpscaleBy', {
                  inputs: [['samples', 'LATENT', lid]],
                  outputs: [['LATENT', 'LATENT']],
                  widgets: ['nearest-exact', 2],
                  mode: 4,
                }),
              );
              // A muted side branch hanging off the chain must not disturb it.
              if (kind === 'muted-side') {
                const side = id++;
                const sl = nextLink++;
                ls.push([sl, nid, 0, side, 0, 'LATENT']);
                nodes.push(node(side, 'VAEDecode', { inputs: [['samples', 'LATENT', sl]], mode: 2 }));
              }
            }
            from = nid;
          }
          const last = nextLink++;
          ls.push([last, from, 0, 8, 0, 'LATENT']);
          (nodes[5]!.inputs as Array<Record<string, unknown>>)[0] = {
            name: 'samples',
            type: 'LATENT',
            link: last,
          };
          const { prompt } = toApiPrompt(workflow(nodes, ls as LinkTuple[]), defs);
          assert.deepEqual(prompt['8']?.inputs.samples, ['3', 0]);
          assert.equal(Object.keys(prompt).length, 7);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a primitive reaches every target through any tree of Reroutes, and wins over stale values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 8 }),
        fc.string({ maxLength: 20 }),
        (depths, value) => {
          const nodes = [node(1, 'PrimitiveNode', { outputs: [['STRING', 'STRING']], widgets: [value] })];
          const links: LinkTuple[] = [];
          let id = 10;
          let lid = 1;
          depths.forEach((depth) => {
            let from = 1;
            for (let d = 0; d < depth; d++) {
              const r = id++;
              links.push([lid, from, 0, r, 0, 'STRING']);
              nodes.push(node(r, 'Reroute', { inputs: [['', '*', lid++]], outputs: [['', 'STRING']] }));
              from = r;
            }
            const t = id++;
            links.push([lid, from, 0, t, 0, 'STRING']);
            nodes.push(
              node(t, 'SaveImage', {
                inputs: [['filename_prefix', 'STRING', lid++, 'filename_prefix']],
                widgets: ['stale'],
              }),
            );
          });
          const { prompt } = toApiPrompt(workflow(nodes, links), defs);
          const saves = Object.values(prompt).filter((n) => n.class_type === 'SaveImage');
          assert.equal(saves.length, depths.length);
          assert.equal(Object.keys(prompt).length, depths.length, 'primitive and reroutes are not emitted');
          for (const s of saves)
            assert.equal(s.inputs.filename_prefix, value.includes('%') ? s.inputs.filename_prefix : value);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('scale', () => {
  it('converts the 500-node tiled workflow exactly like the recorded pairs', () => {
    const { ui, expected, uiNodes } = tileWorkflow(500);
    assert.ok(uiNodes >= 500);
    const { prompt, warnings } = toApiPrompt(ui, defs);
    assert.deepEqual(comparePrompts(prompt, expected as never, warnings), []);
  });
});
