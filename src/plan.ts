export async function planCommand(_args: string[], _out: { stdout: (s: string) => void }): Promise<number> {
  throw new Error("plan: not built yet");
}
