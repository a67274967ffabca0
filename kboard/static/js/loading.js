// The header's loading progress: while the server reads the logdir for the first time (it
// answers at once), say how far it is. Runs appear meanwhile through the live updates.

const POLL_MS = 250;

/** Ask /api/status until the first read is over, showing runs and megabytes read so far. */
export async function watchLoading() {
  const label = document.getElementById('kb-loading');
  if (!label) return;
  for (;;) {
    let status;
    try {
      // Not fetchJSON: this poll must not spin the page's busy indicator.
      const response = await fetch('api/status', { headers: { Accept: 'application/json' } });
      if (!response.ok) break;
      status = await response.json();
    } catch {
      break;
    }
    if (!status.loading) break;
    const mb = (status.bytes_read / 1e6).toFixed(0);
    label.textContent =
      `reading logdir: ${status.runs_read.toLocaleString()} of ` +
      `${status.runs_found.toLocaleString()} runs, ${mb} MB`;
    label.hidden = false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  label.hidden = true;
}
