// Package objstore keeps result files in object storage: a bucket named by
// a URL, opened through gocloud.dev/blob, so that worker processes on
// several machines share one store without a shared file system.
//
// A location is a bucket URL when it has a scheme (see [IsURL]); a plain
// path is a local directory, which the callers keep handling as before
// (temporary file, fsync, rename). The schemes are those of the drivers
// this package links:
//
//	s3://BUCKET/PREFIX?region=R&endpoint=URL&use_path_style=true   Amazon S3 and S3-compatible stores
//	gs://BUCKET/PREFIX                                             Google Cloud Storage
//	azblob://CONTAINER/PREFIX                                      Azure Blob Storage
//	file:///ABSOLUTE/DIR                                           a directory, through gocloud's fileblob
//
// For s3, gs and azblob, the URL's path (without its leading slash) is a key
// prefix: s3://videos/seedbatch keeps row r of batch b as
// seedbatch/b/r.mp4 in bucket videos. The query is the driver's (see
// gocloud.dev's URL documentation); credentials come from each SDK's usual
// environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile,
// GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT with
// AZURE_STORAGE_KEY or a managed identity), never from the URL.
//
// An object becomes visible only when its upload is committed: [Bucket.Create]
// returns a writer whose Close commits, and whose upload is discarded when
// the context given to Create is canceled before Close.
package objstore
