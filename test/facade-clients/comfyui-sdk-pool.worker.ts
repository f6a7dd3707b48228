// The ComfyPool case of comfyui-sdk.test.ts, run in a worker thread the test terminates: the SDK's
// ComfyPool polls its job queue every 100 ms in a loop that nothing stops (destroy() neither), so
// in the test's own thread it would keep the test process alive after the last test. Posts the
// PNG bytes of each run's image, in the order of `colors`, and the facade requests the clients
// made that got a 4xx/5xx; or the error that stopped it.
import { parentPort, workerData } from 'node:worker_threads';
import { ComfyApi, ComfyPool, EQueueMode } from '@saintno/comfyui-sdk';
import { watchFetch } from './helpers.ts';
import { builder, run } from './saintno.ts';

const { url, colors } = workerData as { url: string; colors: number[] };
const failures: string[] = [];
const unwatch = watchFetch(url, failures);
try {
  // As the SDK's examples do: the pool initialises its clients itself.
  const clients = ['sdk-pool-a', 'sdk-pool-b'].map((id) => new ComfyApi(url, id));
  const pool = new ComfyPool(clients, EQueueMode.PICK_LOWEST);
  const outs = await pool.batch(
    colors.map((c, i) => (api: ComfyApi) => run(api, builder(`sdk_pool_${i}`, c))),
  );
  const images: Uint8Array[] = [];
  for (const out of outs) {
    const [image] = out.images.images;
    if (!image) throw new Error('a pool run returned no image');
    const res = await fetch((clients[0] as ComfyApi).getPathImage(image));
    if (res.status !== 200) throw new Error(`GET ${image.filename}: ${res.status}`);
    images.push(new Uint8Array(await res.arrayBuffer()));
  }
  pool.destroy();
  parentPort?.postMessage({ images, failures });
} catch (err) {
  parentPort?.postMessage({
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    failures,
  });
} finally {
  unwatch();
}
