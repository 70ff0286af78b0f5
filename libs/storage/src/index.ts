export * from "./driver.js";
export * from "./filesystem.js";
// The S3 driver is the subpath "@minato/storage/s3", so the AWS SDK loads only when S3 is used.
