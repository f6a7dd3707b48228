// Heavy optional dependencies, loaded on first use: a gateway that never converts an image or talks to S3
// does not pay their import time and memory at start-up (the S3 SDK alone is ~1 s and ~30 MiB to import).
// They are CommonJS packages: a synchronous require() (cached by Node after the first call) keeps their
// call sites synchronous.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type SharpModule = typeof import('sharp')['default'];
type S3ClientModule = typeof import('@aws-sdk/client-s3');
type S3StorageModule = typeof import('@aws-sdk/lib-storage');
type S3PresignerModule = typeof import('@aws-sdk/s3-request-presigner');

/** sharp (image decoding and encoding). */
export function loadSharp(): SharpModule {
  return require('sharp') as SharpModule;
}

/** @aws-sdk/client-s3. */
export function loadS3Client(): S3ClientModule {
  return require('@aws-sdk/client-s3') as S3ClientModule;
}

/** @aws-sdk/lib-storage (multipart uploads). */
export function loadS3Storage(): S3StorageModule {
  return require('@aws-sdk/lib-storage') as S3StorageModule;
}

/** @aws-sdk/s3-request-presigner. */
export function loadS3Presigner(): S3PresignerModule {
  return require('@aws-sdk/s3-request-presigner') as S3PresignerModule;
}
