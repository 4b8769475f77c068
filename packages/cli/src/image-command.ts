/** `outrig image build [--out DIR] [--mirror URL]`: a thin wrapper over buildImage from @outrig/sandboxes. */
import { parseArgs } from "node:util";
import { buildImage, ImageBuildError } from "@outrig/sandboxes";

export const IMAGE_USAGE = "usage: outrig image build [--out DIR] [--mirror URL]";

export interface ImageCommandOptions {
  /** OUTRIG_HOME; the default image goes to <home>/images/default. */
  readonly home: string;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

export async function imageCommand(argv: readonly string[], options: ImageCommandOptions): Promise<number> {
  const [subcommand, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { out: { type: "string" }, mirror: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  if (subcommand !== "build" || positionals.length > 0) {
    options.err(IMAGE_USAGE);
    return 1;
  }
  const started = Date.now();
  // Ctrl-C or a CI timeout stops debootstrap and removes the partial build.
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once("SIGINT", cancel);
  process.once("SIGTERM", cancel);
  try {
    const image = await buildImage({
      signal: controller.signal,
      outrigHome: options.home,
      ...(values.out ? { outDir: values.out } : {}),
      ...(values.mirror ? { mirror: values.mirror } : {}),
      log: (line) => options.err(`[image +${((Date.now() - started) / 1000).toFixed(0)} s] ${line}`),
    });
    const { manifest } = image;
    options.err(
      `[image] built ${image.imageDir}: ${manifest.packages.length} packages, ` +
        `${(manifest.sizeBytes / 1024 / 1024).toFixed(0)} MiB in ${manifest.fileCount} files, ` +
        `${(manifest.buildMs / 1000).toFixed(1)} s, ${manifest.contentHash}`,
    );
    options.out(image.imageDir);
    return 0;
  } catch (error) {
    if (error instanceof ImageBuildError) {
      options.err(`outrig image: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    process.off("SIGINT", cancel);
    process.off("SIGTERM", cancel);
  }
}
