/**
 * onnxruntime-node's native library stays silent not only under ORT_DISABLE_TELEMETRY=1 but also when
 * it believes it runs in CI: it looks for CI, TF_BUILD, GITHUB_ACTIONS, GITLAB_CI and the other
 * variables below (the list is in libonnxruntime.so's strings; checked with onnxruntime-node 1.30).
 * .ci/run exports CI=true, so a test that wants to see whether Quant Lens itself turns telemetry off
 * must remove all of them, or the library's own CI check would hide a regression.
 */
const TELEMETRY_SWITCHES = [
  'ORT_DISABLE_TELEMETRY',
  'CI',
  'TF_BUILD',
  'GITHUB_ACTIONS',
  'GITLAB_CI',
  'CIRCLECI',
  'TRAVIS',
  'JENKINS_URL',
  'CODEBUILD_BUILD_ID',
  'BUILDKITE',
  'TEAMCITY_VERSION',
  'APPVEYOR',
  'BITBUCKET_BUILD_NUMBER',
  'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI',
] as const;

/** Removes, in place, every variable that switches onnxruntime's telemetry off; returns `env`. */
export function withoutTelemetrySwitches(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  for (const name of TELEMETRY_SWITCHES) delete env[name];
  return env;
}
