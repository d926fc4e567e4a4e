export async function serveCommand(_args: string[]): Promise<number> {
  throw new Error("serve: not built yet");
}
