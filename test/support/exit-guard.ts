// Loaded into every test file's process (`npm run test:unit`, --import): a file whose process is
// still alive 10 s after its last test (a leaked socket, timer or child) fails, naming what keeps it
// alive, instead of hanging the run. It replaces --test-force-exit, which cut the report stream of
// fast files: the runner counted fewer tests than ran, and the run still passed
// (nodejs/node#64833). The timer is unref'd, so a file that ends cleanly exits at once.
import { after } from 'node:test';

/** How long a file's process may outlive its last test (its own after hooks close servers first). */
const GRACE_MS = Number(process.env.TEST_EXIT_GRACE_MS ?? 10_000);

after(() => {
  setTimeout(() => {
    process.stderr.write(
      `# this test file's process is still alive ${GRACE_MS} ms after its last test; active: ${JSON.stringify(process.getActiveResourcesInfo())}\n`,
    );
    process.exit(1);
  }, GRACE_MS).unref();
});
