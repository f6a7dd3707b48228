// One builder of output content links (io/outputs/output-link.ts): a `link` output and a delivered
// (`inline`) output point at the same content route, and both links live as long as their job is
// kept, counted from when its outputs were collected (not from when it was submitted).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { invertPrompt, startTestStack, type TestStack } from '../support/gateway.ts';

let stack: TestStack;
before(async () => {
  // Each node takes a while, so a job ends well after it was created.
  stack = await startTestStack({ nodeDelayMs: 600 });
});
after(async () => {
  await stack.close();
});

for (const store of ['link', 'inline'] as const) {
  test(`a ${store} output's content link expires with its job, counted from the end of the run`, async () => {
    const created = await stack.request('/api/v2/jobs?wait=20', {
      body: { workflow: invertPrompt(`links-${store}`), output: { store } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const job = created.body;
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const ran = Date.parse(job.completed_at) - Date.parse(job.created_at);
    assert.ok(ran >= 600, `the job ran ${ran} ms; the test needs a slow job`);
    const [output] = job.outputs;
    assert.equal(output.url, `${stack.url}/api/v2/jobs/${job.id}/outputs/0/content`);
    // The job is kept until expires_at (completion + retention); so is its link, give or take the
    // moment between collecting the outputs and recording the end.
    const gap = Math.abs(Date.parse(output.url_expires_at) - Date.parse(job.expires_at));
    assert.ok(gap < 250, `url_expires_at ${output.url_expires_at} vs expires_at ${job.expires_at}`);
    assert.equal((await fetch(output.url)).status, 200);
  });
}
