/**
 * `--help`: the usage, then every row of the settings table with its environment variables and
 * default.
 *
 * @module
 */
import { type Setting, SETTINGS } from "./settings.ts";

/**
 * Whether the arguments ask for help (`--help` / `-h`), without validating anything else.
 *
 * @example
 * ```ts
 * import { wantsHelp } from "./help.ts";
 * wantsHelp(["--help"]); // true
 * ```
 */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/**
 * The `--help` text: usage, every flag with its environment variables and default.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * console.log(helpText("master"));
 * ```
 */
export function helpText(program = "deno task master"): string {
  const rows = (Object.entries(SETTINGS) as [string, Setting][]).map(([name, s]) => {
    const left = `  --${name}${s.boolean ? "" : " <value>"}`;
    const env = s.env ? `  [env ${s.env.join(", ")}]` : "";
    const def = s.default ? `  (default ${s.default})` : "";
    return `${left.padEnd(36)} ${s.help}${env}${def}`;
  });
  return [
    `Usage: ${program} [channel-name] [options]`,
    "",
    "Streams H.264 to browsers through Amazon Kinesis Video Streams WebRTC as the channel's master.",
    "With no arguments it works from the environment alone, like the KVS C SDK sample.",
    "",
    "Options:",
    ...rows,
    "",
    "Adaptation (a ladder of folders, e.g. the default samples: 720p 2.4 Mb/s, 360p 0.8 Mb/s):",
    "  each viewer receives one rung, from its bandwidth estimate, switching only at an IDR:",
    "  down when the estimate stays below 1.1 x its rung's bitrate for 0.5 s (at once when it",
    "  needs an IDR below 1.25 x), up when it stays above 1.25 x the next rung's for 4 s.",
    "",
    "Credentials (one of):",
    "  AWS IoT: AWS_IOT_CORE_CREDENTIAL_ENDPOINT, AWS_IOT_CORE_ROLE_ALIAS, AWS_IOT_CORE_THING_NAME,",
    "           AWS_IOT_CORE_CERT, AWS_IOT_CORE_PRIVATE_KEY (or the --iot-* flags)",
    "  Keys:    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional)",
    "",
    "Example (real AWS, IoT credentials):",
    "  export AWS_DEFAULT_REGION=us-west-2 AWS_KVS_CACERT_PATH=cacert.pem",
    "  export AWS_IOT_CORE_CREDENTIAL_ENDPOINT=<prefix>.credentials.iot.us-west-2.amazonaws.com",
    "  export AWS_IOT_CORE_ROLE_ALIAS=<role-alias> AWS_IOT_CORE_THING_NAME=<thing-name>",
    "  export AWS_IOT_CORE_CERT=certificate.pem AWS_IOT_CORE_PRIVATE_KEY=private.key",
    `  ${program} demo-channel`,
  ].join("\n");
}
