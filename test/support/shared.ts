// Where the test data lives: test/fixtures holds copies of the recordings and workflow pairs so a clone
// without ../shared (a user's) tests itself; ../shared is only where new recordings arrive.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Absolute path of the test fixtures copied from ../shared. */
export const FIXTURES_DIR = join(REPO_ROOT, 'test', 'fixtures');
/** Absolute path of the recorded ComfyUI transcripts. */
export const TRANSCRIPTS_DIR = join(FIXTURES_DIR, 'comfyui-transcripts');
/** Absolute path of the UI/API workflow pairs. */
export const WORKFLOW_PAIRS_DIR = join(FIXTURES_DIR, 'workflow-pairs');

/** Reads and parses one JSON file. */
export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
