// ConvertPool: large editor workflows convert on worker threads, from their JSON text, to exactly
// what toApiPrompt gives in place, with the same errors; small ones never start a thread; the size
// refusal comes before any thread work; the queue is bounded, calls have deadlines and signals, and
// close() ends it all.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tileWorkflow } from '../../bench/convert.ts';
import {
  ConvertBusyError,
  ConvertPool,
  ConvertTimeoutError,
  type NodeDefs,
  toApiPrompt,
  WorkflowConversionError,
  WorkflowTooLargeError,
} from '../../src/workflow/index.ts';
import { nestedSubgraphWorkflow } from '../support/attack-workflows.ts';

const defs = JSON.parse(
  readFileSync(new URL('../../src/simulator/data/object_info.json', import.meta.url), 'utf8'),
) as NodeDefs;
const big = tileWorkflow(2000).ui;
const bigText = JSON.stringify({ workflow: big });

describe('ConvertPool', () => {
  it('converts a large workflow on a worker from its JSON text, to what toApiPrompt gives in place', async () => {
    const pool = new ConvertPool({ workers: 1 });
    try {
      const inPlace = toApiPrompt(big, defs);
      const source = { text: bigText, path: ['workflow'] };
      const result = await pool.convert(big, defs, { source });
      assert.equal(pool.threads, 1, 'a worker started');
      assert.deepEqual(result, inPlace);
      // The worker read the text, not the object: a text that differs gives its own result.
      const other = tileWorkflow(1000).ui;
      const fromText = await pool.convert(big, defs, {
        source: { text: JSON.stringify({ workflow: other }), path: ['workflow'] },
      });
      assert.deepEqual(fromText, toApiPrompt(other, defs));
      // Without a source the object is serialized here and converted all the same.
      assert.deepEqual(await pool.convert(big, defs), inPlace);
    } finally {
      await pool.close();
    }
  });

  it('converts small workflows in place, without a thread', async () => {
    const pool = new ConvertPool({ workers: 2 });
    const small = tileWorkflow(50).ui;
    assert.deepEqual(await pool.convert(small, defs), toApiPrompt(small, defs));
    assert.equal(pool.threads, 0);
    await pool.close();
  });

  it('refuses a workflow over maxNodes before any thread work, with the in-place error', async () => {
    const pool = new ConvertPool({ workers: 1 });
    const started = process.cpuUsage();
    await assert.rejects(pool.convert(nestedSubgraphWorkflow(6), defs, { maxNodes: 5000 }), (err) => {
      assert.ok(err instanceof WorkflowTooLargeError);
      assert.equal(err.nodes, 1_111_112);
      assert.equal(err.limit, 5000);
      return true;
    });
    const used = process.cpuUsage(started);
    assert.ok((used.user + used.system) / 1000 < 200);
    assert.equal(pool.threads, 0);
    await pool.close();
  });

  it("gives a worker's conversion errors back as the same classes, codes and issues", async () => {
    const pool = new ConvertPool({ workers: 1 });
    try {
      // A GetNode reading a name no SetNode sets: an error of the whole conversion.
      const broken = structuredClone(big) as { nodes: Array<Record<string, unknown>> };
      broken.nodes.push({
        id: 999_999_999,
        type: 'GetNode',
        mode: 0,
        widgets_values: ['nowhere'],
        outputs: [],
      });
      const inPlace = (() => {
        try {
          toApiPrompt(broken, defs);
        } catch (err) {
          return err as WorkflowConversionError;
        }
        assert.fail('expected an error');
      })();
      await assert.rejects(pool.convert(broken, defs), (err) => {
        assert.ok(err instanceof WorkflowConversionError);
        assert.equal(err.code, inPlace.code);
        assert.equal(err.message, inPlace.message);
        assert.deepEqual(err.issues, inPlace.issues);
        return true;
      });
      assert.equal(pool.threads, 1);
    } finally {
      await pool.close();
    }
  });

  it('refuses calls past the queue bound at once with ConvertBusyError', async () => {
    const pool = new ConvertPool({ workers: 1, maxQueue: 1 });
    try {
      const source = { text: bigText, path: ['workflow'] };
      const running = pool.convert(big, defs, { source });
      const waiting = pool.convert(big, defs, { source });
      await assert.rejects(pool.convert(big, defs, { source }), ConvertBusyError);
      await Promise.all([running, waiting]);
      // Room again once they are done.
      await pool.convert(big, defs, { source });
    } finally {
      await pool.close();
    }
  });

  it('ends a call at its deadline or its signal, and the next call gets a fresh worker', async () => {
    const pool = new ConvertPool({ workers: 1 });
    try {
      const source = { text: bigText, path: ['workflow'] };
      await assert.rejects(pool.convert(big, defs, { source, timeoutMs: 1 }), ConvertTimeoutError);
      const controller = new AbortController();
      const call = pool.convert(big, defs, { source, signal: controller.signal });
      controller.abort(new Error('client left'));
      await assert.rejects(call, /client left/);
      assert.deepEqual(await pool.convert(big, defs, { source }), toApiPrompt(big, defs));
    } finally {
      await pool.close();
    }
  });

  it('close() fails calls in flight, is idempotent, and converts in place afterwards', async () => {
    const pool = new ConvertPool({ workers: 1 });
    const source = { text: bigText, path: ['workflow'] };
    const call = assert.rejects(pool.convert(big, defs, { source }), /pool is closed/);
    await Promise.all([pool.close(), pool.close()]);
    await call;
    assert.equal(pool.threads, 0);
    assert.deepEqual(await pool.convert(big, defs, { source }), toApiPrompt(big, defs));
  });
});
