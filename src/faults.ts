// Named crash points for the crash-consistency tests. `REXCSI_FAULT_POINT=<name>` makes the process die
// with SIGKILL the first time it reaches that point; unset (production), a check is one comparison.
const armed = process.env.REXCSI_FAULT_POINT ?? '';

export function faultPoint(name: string): void {
  if (armed !== '' && armed === name) {
    process.kill(process.pid, 'SIGKILL');
  }
}
