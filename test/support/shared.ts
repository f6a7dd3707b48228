// Where the team's shared test data lives: ../shared beside the repository (CI lays it out the same way).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Absolute path of ../shared. */
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');
/** Absolute path of the recorded ComfyUI transcripts. */
export const TRANSCRIPTS_DIR = join(SHARED_DIR, 'comfyui-transcripts');
/** Absolute path of the UI/API workflow pairs. */
export const WORKFLOW_PAIRS_DIR = join(SHARED_DIR, 'workflow-pairs');

/** Reads and parses one JSON file. */
export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
