// Where models live: the folders of ComfyUI's models layout a download may target, which loader
// input reads which folder, and the file-name rules (no traversal, no hidden or odd names).
import { InvalidDownloadError } from './errors.ts';

/** Model folders of ComfyUI's layout that downloads may write into (no `custom_nodes`: that is code). */
export const MODEL_FOLDERS: readonly string[] = [
  'checkpoints',
  'loras',
  'vae',
  'vae_approx',
  'text_encoders',
  'clip',
  'diffusion_models',
  'unet',
  'clip_vision',
  'style_models',
  'embeddings',
  'controlnet',
  't2i_adapter',
  'gligen',
  'upscale_models',
  'latent_upscale_models',
  'hypernetworks',
  'photomaker',
  'classifiers',
  'model_patches',
  'audio_encoders',
  'configs',
];

/** `ClassType.input` → folder, for the core loaders (custom loaders name their folder in `models` entries). */
const LOADER_FOLDERS: Readonly<Record<string, string>> = {
  'CheckpointLoaderSimple.ckpt_name': 'checkpoints',
  'CheckpointLoader.ckpt_name': 'checkpoints',
  'CheckpointLoader.config_name': 'configs',
  'unCLIPCheckpointLoader.ckpt_name': 'checkpoints',
  'ImageOnlyCheckpointLoader.ckpt_name': 'checkpoints',
  'LTXVAudioVAELoader.ckpt_name': 'checkpoints',
  'LTXAVTextEncoderLoader.ckpt_name': 'checkpoints',
  'LTXAVTextEncoderLoader.text_encoder': 'text_encoders',
  'VAELoader.vae_name': 'vae',
  'LoraLoader.lora_name': 'loras',
  'LoraLoaderModelOnly.lora_name': 'loras',
  'CLIPLoader.clip_name': 'text_encoders',
  'DualCLIPLoader.clip_name1': 'text_encoders',
  'DualCLIPLoader.clip_name2': 'text_encoders',
  'TripleCLIPLoader.clip_name1': 'text_encoders',
  'TripleCLIPLoader.clip_name2': 'text_encoders',
  'TripleCLIPLoader.clip_name3': 'text_encoders',
  'QuadrupleCLIPLoader.clip_name1': 'text_encoders',
  'QuadrupleCLIPLoader.clip_name2': 'text_encoders',
  'QuadrupleCLIPLoader.clip_name3': 'text_encoders',
  'QuadrupleCLIPLoader.clip_name4': 'text_encoders',
  'UNETLoader.unet_name': 'diffusion_models',
  'ControlNetLoader.control_net_name': 'controlnet',
  'DiffControlNetLoader.control_net_name': 'controlnet',
  'StyleModelLoader.style_model_name': 'style_models',
  'CLIPVisionLoader.clip_name': 'clip_vision',
  'GLIGENLoader.gligen_name': 'gligen',
  'HypernetworkLoader.hypernetwork_name': 'hypernetworks',
  'UpscaleModelLoader.model_name': 'upscale_models',
  'LatentUpscaleModelLoader.model_name': 'latent_upscale_models',
  'PhotoMakerLoader.photomaker_model_name': 'photomaker',
  'ModelPatchLoader.name': 'model_patches',
  'AudioEncoderLoader.audio_encoder_name': 'audio_encoders',
};

/** The folder a core loader input reads, or undefined for inputs we do not know. */
export function folderOf(classType: string, input: string): string | undefined {
  return LOADER_FOLDERS[`${classType}.${input}`];
}

/** True for a folder downloads may target. */
export function isModelFolder(directory: string): boolean {
  return MODEL_FOLDERS.includes(directory);
}

/** Throws unless `directory` is a known model folder. */
export function checkFolder(directory: string): string {
  if (!isModelFolder(directory)) {
    throw new InvalidDownloadError('unknown_model_folder', `"${directory}" is not a model folder.`, {
      directory,
      folders: [...MODEL_FOLDERS],
    });
  }
  return directory;
}

const MAX_NAME = 255;
/** One path segment: letters, digits and a few punctuation marks; no leading dot. */
const SEGMENT = /^[\p{L}\p{N}_+=@,()[\] -][\p{L}\p{N}._+=@,()[\] -]*$/u;

/**
 * Checks a model file name (ComfyUI model names may hold one subfolder level or more, `sdxl/a.safetensors`):
 * refuses traversal, absolute paths, backslashes, control characters, hidden files and our `.part` suffix.
 */
export function checkFilename(name: string): string {
  const refuse = (why: string): never => {
    throw new InvalidDownloadError(
      'invalid_filename',
      `File name ${JSON.stringify(name)} is refused: ${why}.`,
      {
        filename: name,
      },
    );
  };
  if (name.length === 0 || name.length > MAX_NAME) refuse(`it must be 1 to ${MAX_NAME} characters`);
  if (name.includes('\\') || name.startsWith('/')) refuse('it must be a relative path with / separators');
  const segments = name.split('/');
  if (segments.length > 4) refuse('it has too many folder levels');
  for (const segment of segments) {
    if (segment === '.' || segment === '..') refuse('it leaves its folder');
    if (!SEGMENT.test(segment))
      refuse('use letters, digits, spaces and ._-+=@,()[] only, not starting with a dot');
    if (segment.trim() !== segment) refuse('a name part starts or ends with a space');
  }
  if (name.endsWith('.part')) refuse('.part is reserved for files being downloaded');
  return name;
}

/** The file name a URL's last path segment gives (decoded), checked like a given name. */
export function filenameFromUrl(url: URL): string {
  const last = url.pathname.split('/').filter(Boolean).at(-1) ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    decoded = last;
  }
  if (decoded === '' || !/\.[a-z0-9]{2,12}$/i.test(decoded)) {
    throw new InvalidDownloadError(
      'filename_required',
      'The URL does not end in a file name; give `filename`.',
      { url_path: url.pathname },
    );
  }
  return checkFilename(decoded);
}
