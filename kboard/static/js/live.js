// Live updates: one stream per browser, shared by every tab of this kboard.
//
// One tab, the leader (it holds a Web Lock), reads api/stream and relays each generation to
// the other tabs over a BroadcastChannel. When the leader closes, the next tab in the lock's
// queue takes over, opens the stream and tells every tab the generation it finds, so no
// update is lost. Without Web Locks or BroadcastChannel each tab reads its own stream.
// When the server already holds as many streams as it allows (503 with Retry-After), the
// leader polls api/runs for the generation instead, says so, and tries the stream again later.

const STREAM_URL = 'api/stream';
const POLL_URL = 'api/runs';
const POLL_MS = 5000;
// The server sends a heartbeat every 10 s: a stream silent for longer than this is dead.
const SILENCE_MS = 25000;
const MAX_RETRY_MS = 15000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follow the server's generation. onGeneration(generation, force) is called with each one
 * (force: refresh even when it looks unchanged, after a lost connection); onStatus(state,
 * text, title, role) with the indicator's state: 'connecting', 'live', 'polling' or
 * 'offline', and this tab's part: 'leader' (reads the stream), 'follower' or 'alone'.
 */
export function startLive({ onGeneration, onStatus }) {
  const shared = navigator.locks && typeof BroadcastChannel === 'function';
  if (!shared) {
    follow(onGeneration, (state, text, title) => onStatus(state, text, title, 'alone'));
    return;
  }
  // One kboard is one origin and path (two kboards behind one proxy must not mix).
  const name = `kboard-live:${new URL('.', location.href).pathname}`;
  const channel = new BroadcastChannel(name);
  let leading = false;
  let status = null;
  channel.addEventListener('message', ({ data }) => {
    if (leading) {
      if (data.type === 'hello' && status) channel.postMessage(status);
    } else if (data.type === 'generation') {
      onGeneration(data.generation, data.force);
    } else if (data.type === 'status') {
      const title = `${data.title} (one connection shared by this browser’s kboard tabs)`;
      onStatus(data.state, data.text, title, 'follower');
    }
  });
  onStatus('connecting', 'connecting…', 'Waiting for the live-update connection', 'follower');
  channel.postMessage({ type: 'hello' }); // the leader answers with its status
  navigator.locks.request(name, () => {
    leading = true;
    follow(
      (generation, force) => {
        channel.postMessage({ type: 'generation', generation, force });
        onGeneration(generation, force);
      },
      (state, text, title) => {
        status = { type: 'status', state, text, title };
        channel.postMessage(status);
        onStatus(state, text, title, 'leader');
      },
    );
    return new Promise(() => {}); // held until this tab goes
  });
}

/** Read the stream for ever: reconnect with backoff, poll while the server is full. */
async function follow(onGeneration, onStatus) {
  let delay = 1000;
  let dropped = false;
  for (;;) {
    const aborter = new AbortController();
    let response = null;
    try {
      response = await fetch(STREAM_URL, {
        headers: { Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: aborter.signal,
      });
    } catch {
      response = null;
    }
    if (response && response.ok && response.body) {
      delay = 1000;
      onStatus('live', 'live', 'Updates as soon as the logs change');
      let force = dropped; // catch up even if a restarted server's generation looks equal
      try {
        await readEvents(response.body, aborter, (event, data) => {
          if (event !== 'generation') return;
          onGeneration(JSON.parse(data).generation, force);
          force = false;
        });
      } catch {
        // the connection broke; reconnect below
      }
      dropped = true;
    } else if (response && response.status === 503 && response.headers.has('Retry-After')) {
      const seconds = Number(response.headers.get('Retry-After'));
      await poll(Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 30000, onGeneration, onStatus);
      continue;
    } else {
      dropped = true;
    }
    onStatus('offline', 'reconnecting…', 'The live-update connection was lost');
    await sleep(delay);
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }
}

/** Ask api/runs for the generation every few seconds for `ms` milliseconds. */
async function poll(ms, onGeneration, onStatus) {
  onStatus(
    'polling',
    `polling every ${POLL_MS / 1000} s`,
    'The server has as many live connections as it allows; checking for changes every ' +
      `${POLL_MS / 1000} s instead`,
  );
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const response = await fetch(POLL_URL, {
        headers: { Accept: 'application/json' },
        cache: 'no-store',
      });
      if (response.ok) onGeneration((await response.json()).generation, false);
    } catch {
      // try again at the next tick
    }
    await sleep(POLL_MS);
  }
}

/** Call handle(event, data) for each Server-Sent Event until the body ends or goes silent. */
async function readEvents(body, aborter, handle) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let silence = setTimeout(() => aborter.abort(), SILENCE_MS);
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      clearTimeout(silence);
      silence = setTimeout(() => aborter.abort(), SILENCE_MS);
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) handle(event, data.join('\n'));
      }
    }
  } finally {
    clearTimeout(silence);
  }
}
