// RunRegistry routing with stand-in runs: every run of a prompt gets its messages (the usual single
// run and a prompt awaited twice), a run that ends while handling a message does not stop delivery
// to the others, and a run registered during delivery only sees the next message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PromptMessage } from '../../src/comfy/messages.ts';
import type { PromptRun } from '../../src/comfy/prompt-run.ts';
import { RunRegistry } from '../../src/comfy/run-registry.ts';

type Stub = PromptRun & { seen: string[] };

function stub(promptId: string, onMessage?: (message: PromptMessage) => void): Stub {
  const seen: string[] = [];
  return {
    promptId,
    seen,
    handleMessage(message: PromptMessage) {
      seen.push(message.type);
      onMessage?.(message);
    },
  } as unknown as Stub;
}

const start = (id: string): PromptMessage => ({ type: 'execution_start', data: { prompt_id: id } });
const success = (id: string): PromptMessage => ({ type: 'execution_success', data: { prompt_id: id } });

describe('RunRegistry', () => {
  it('routes to the single run of a prompt and forgets it once deleted', () => {
    const registry = new RunRegistry();
    const a = stub('a');
    const b = stub('b');
    registry.add(a);
    registry.add(b);
    registry.add(a); // adding twice tracks it once
    assert.equal(registry.size, 2);
    registry.routeMessage('a', start('a'));
    registry.routeMessage('nobody', start('nobody'));
    assert.deepEqual(a.seen, ['execution_start']);
    assert.deepEqual(b.seen, []);
    registry.delete(a);
    registry.delete(a);
    assert.equal(registry.size, 1);
    registry.routeMessage('a', success('a'));
    assert.deepEqual(a.seen, ['execution_start']);
  });

  it('delivers to every run of a prompt even when one ends while handling the message', () => {
    const registry = new RunRegistry();
    const first: Stub = stub('p', () => registry.delete(first));
    const second = stub('p');
    registry.add(first);
    registry.add(second);
    registry.routeMessage('p', start('p'));
    assert.deepEqual(first.seen, ['execution_start']);
    assert.deepEqual(second.seen, ['execution_start']);
    assert.equal(registry.size, 1);
    registry.routeMessage('p', success('p'));
    assert.deepEqual(second.seen, ['execution_start', 'execution_success']);
  });

  it('a run registered while a message is delivered gets only the messages after it', () => {
    const registry = new RunRegistry();
    let late: Stub | undefined;
    const only = stub('p', () => {
      if (late) return;
      late = stub('p');
      registry.add(late);
    });
    registry.add(only);
    registry.routeMessage('p', start('p'));
    assert.deepEqual(late?.seen, []);
    registry.routeMessage('p', success('p'));
    assert.deepEqual(late?.seen, ['execution_success']);
    assert.deepEqual(only.seen, ['execution_start', 'execution_success']);
  });
});
