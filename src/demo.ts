export async function demoCommand(_args: string[], _out: { stdout: (s: string) => void }): Promise<number> {
  throw new Error("demo: not built yet");
}
