// The gateway's version: the release this code is (CHANGELOG.md), the same as package.json's
// (version.test.ts holds them equal). The maintenance route answers it and the metrics export it
// (eve_gateway_build_info), so an owner can tell which gateway a project runs.
export const GATEWAY_VERSION = "1.0.0";
