// The one shape of a job's output, as reported in `job.outputs[]`: the Comfy API v2 Output object
// (comfy-api-v2.md §5) plus the gateway's additive fields (v2 clients ignore them). Link outputs
// built from a run's file list and outputs OutputDelivery streamed are both this type.

/** How outputs are delivered. */
export type OutputStore = 'link' | 'inline' | 'storage';

/** v2 output types. */
export type OutputType = 'image' | 'video' | 'audio' | 'text' | 'file' | 'latent';

/** One output of a job; `url` may be host-relative and is made absolute when the job is rendered. */
export interface JobOutput {
  // v2 fields
  node_id: string;
  name: string;
  type: OutputType;
  content_type: string;
  size_bytes: number;
  /** `<job id>.<index>`: the output is an asset (GET /api/v2/assets/{id}). */
  id: string;
  /** `blake3:<hex>` is not computed for outputs (v2 allows null); see `sha256`. */
  hash: string | null;
  url: string;
  url_expires_at: string;
  job_id: string;
  // our extensions, on outputs OutputDelivery streamed (measured as they passed)
  /** Position in job.outputs (the `{index}` of the gateway's content link). */
  index?: number;
  sha256?: string;
  /** Where ComfyUI holds the original: `/view?filename&subfolder&type`. */
  source?: { filename: string; subfolder: string; type: string };
  /** The format the bytes were converted to, when conversion was asked for. */
  format?: 'png' | 'jpeg' | 'webp';
  quality?: number;
  /** Delivery used for this output. */
  store?: OutputStore;
  /** Base64 content (store "inline"). */
  data_base64?: string;
  /** Text content (type "text"). */
  text?: string;
  /** The stored object's permanent location (store "storage"), e.g. `s3://bucket/prefix/job/…`. */
  storage_url?: string;
  /** True for preview (temp) outputs, only present when previews were asked for. */
  preview?: boolean;
  // our extensions, on link outputs built from the run's file list (bytes not read, size 0)
  /** ComfyUI's subfolder of the file. */
  subfolder?: string;
  /** ComfyUI's folder type of the file (`output`, `temp`, `input`). */
  comfy_type?: string;
}

/** An output OutputDelivery streamed: measured, with its source and delivery. */
export type DeliveredOutput = JobOutput & Required<Pick<JobOutput, 'index' | 'sha256' | 'source' | 'store'>>;
