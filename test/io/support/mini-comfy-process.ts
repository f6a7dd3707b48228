// Runs a mini ComfyUI in its own process, so a test that measures its own memory measures only the
// side under test, not the server generating the data. Talks over the IPC channel of `fork`.
import { startMiniComfy } from './mini-comfy.ts';

const comfy = await startMiniComfy();
process.send?.({ type: 'ready', baseUrl: comfy.baseUrl });
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stats')
    process.send?.({ type: 'stats', maxConcurrentViews: comfy.maxConcurrentViews });
  if (message.type === 'close') void comfy.close().then(() => process.exit(0));
});
// The parent died or closed the channel: never outlive it.
process.on('disconnect', () => void comfy.close().then(() => process.exit(0)));
