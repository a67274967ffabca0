// The IMAGES tab: a card per run, tag and sample index, each with its own step slider.
//
// /api/images lists the kept steps of a tag (size, number of samples); the bytes come from
// /api/image one at a time, as plain <img> elements the browser caches. Brightness and
// contrast are CSS filters set once on the panel; small images are scaled up without
// smoothing so their pixels stay crisp. A slider at the newest step follows new steps.

import { app, defineState, spec } from './app.js';
import { createBoard, frameCard, refreshHeader, registerBoard } from './board.js';
import { codeBlock, el, fetchJSON } from './util.js';

defineState('bright', spec.number(1, 0, 3));
defineState('contrast', spec.number(1, 0, 3));
defineState('actual', spec.bool(false));
defineState('iclosed', spec.list()); // collapsed tag groups

let panel = null;

function imageURL(run, tag, step, sample) {
  const params = new URLSearchParams({ run, tag, step: String(step), sample: String(sample) });
  return `api/image?${params}`;
}

function wallTimeText(seconds) {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toLocaleString() : '';
}

/** One sample index of a run and tag: an image, a step slider, the step and its time. */
class SampleCard {
  constructor(run, tag, info, sample) {
    this.run = run;
    this.tag = tag;
    this.sample = sample;
    this.steps = [];
    this.index = 0;
    this.follow = true; // at the newest step: stay there when new steps arrive
    this.label = el('span', { class: 'kb-card-sample' });
    this.img = el('img', { alt: '', decoding: 'async', draggable: 'false' });
    this.img.addEventListener('load', () => this.onLoad());
    this.img.addEventListener('error', () => this.onError());
    this.placeholder = el('div', { class: 'kb-placeholder kb-image-broken', hidden: true });
    this.frame = el('div', { class: 'kb-image-frame' }, this.img, this.placeholder);
    this.slider = el('input', { type: 'range', min: '0', max: '0', step: '1', value: '0' });
    this.slider.setAttribute('aria-label', `Step of ${tag}, ${run}, sample ${sample + 1}`);
    this.slider.addEventListener('input', () => this.select(Number(this.slider.value)));
    this.stepText = el('output', { class: 'kb-image-step' });
    this.timeText = el('span', { class: 'kb-image-time' });
    this.note = el('p', { class: 'kb-card-note' });
    const controls = el(
      'div',
      { class: 'kb-image-controls' },
      this.slider,
      el('div', { class: 'kb-image-meta' }, this.stepText, this.timeText),
    );
    frameCard(this, info, 'kb-image-card', [this.label], this.frame, controls, this.note);
    this.root.dataset.sample = String(sample);
  }

  setInfo(info) {
    refreshHeader(this, info);
  }

  setSamples(count) {
    this.label.textContent = count > 1 ? `sample ${this.sample + 1} of ${count}` : '';
    this.label.hidden = count <= 1;
  }

  /** New list of steps (this sample's): keep the chosen step, or follow the newest. */
  update(steps, note) {
    const current = this.steps[this.index];
    this.steps = steps;
    let index = steps.length - 1;
    if (!this.follow && current) {
      const same = steps.findIndex((s) => s.step === current.step);
      if (same >= 0) index = same;
    }
    this.slider.max = String(Math.max(steps.length - 1, 0));
    this.slider.disabled = steps.length <= 1;
    this.note.textContent = note;
    this.select(Math.max(index, 0), false);
  }

  select(index, byUser = true) {
    this.index = index;
    if (byUser) this.follow = index === this.steps.length - 1;
    this.slider.value = String(index);
    const item = this.steps[index];
    if (!item) {
      this.img.hidden = true;
      this.placeholder.hidden = false;
      this.placeholder.textContent = 'No image at any step yet.';
      this.stepText.textContent = '';
      this.timeText.textContent = '';
      return;
    }
    this.stepText.textContent = `step ${item.step.toLocaleString()}`;
    this.timeText.textContent = wallTimeText(item.wall_time);
    this.timeText.title = `wall time ${item.wall_time}`;
    const url = imageURL(this.run, this.tag, item.step, this.sample);
    if (this.img.getAttribute('src') !== url) {
      if (item.width > 0 && item.height > 0) {
        this.frame.style.aspectRatio = `${item.width} / ${item.height}`;
        this.img.width = item.width;
        this.img.height = item.height;
      }
      this.img.dataset.step = String(item.step);
      this.img.hidden = false;
      this.placeholder.hidden = true;
      this.img.src = url;
      this.root.dataset.state = 'loading';
    }
  }

  onLoad() {
    this.img.hidden = false;
    this.placeholder.hidden = true;
    this.root.dataset.state = 'ready';
    // Scaled up: keep the pixels square and sharp instead of blurring them.
    const frameWidth = this.frame.clientWidth || 300;
    this.img.classList.toggle('kb-pixelated', this.img.naturalWidth < frameWidth);
  }

  onError() {
    const item = this.steps[this.index];
    this.img.hidden = true;
    this.placeholder.hidden = false;
    this.placeholder.textContent =
      `This image could not be decoded` +
      (item ? ` (step ${item.step.toLocaleString()}, sample ${this.sample + 1}).` : '.');
    this.root.dataset.state = 'error';
  }
}

/** Every sample index of one run and tag: the board's card (a wrapper with no box). */
class ImageSet {
  constructor(run, tag, info) {
    this.run = run;
    this.tag = tag;
    this.info = info;
    this.samples = [new SampleCard(run, tag, info, 0)];
    this.root = el('div', { class: 'kb-image-set' }, this.samples[0].root);
    this.watch = this.samples[0].root; // the wrapper has no box to observe
  }

  setInfo(info) {
    this.info = info;
    for (const card of this.samples) card.setInfo(info);
  }

  async load() {
    let data;
    try {
      data = await fetchJSON(`api/images?${new URLSearchParams({ run: this.run, tag: this.tag })}`);
    } catch (err) {
      const first = this.samples[0];
      first.root.dataset.state = 'error';
      first.note.textContent = `Could not load these images: ${err.message}`;
      return;
    }
    const steps = data.steps || [];
    const count = Math.max(1, ...steps.map((s) => s.samples || 0));
    while (this.samples.length < count) {
      const card = new SampleCard(this.run, this.tag, this.info, this.samples.length);
      this.samples.push(card);
      this.root.append(card.root);
    }
    while (this.samples.length > count) this.samples.pop().root.remove();
    const note =
      data.seen > data.kept
        ? `The last ${data.kept.toLocaleString()} of ${data.seen.toLocaleString()} steps are kept.`
        : '';
    for (const card of this.samples) {
      card.setSamples(count);
      card.update(
        steps.filter((s) => (s.samples || 0) > card.sample),
        note,
      );
    }
  }
}

function applySettings() {
  if (!panel) return;
  const { bright, contrast, actual } = app.state;
  panel.style.setProperty('--kb-img-filter', `brightness(${bright}) contrast(${contrast})`);
  panel.classList.toggle('kb-actual-size', actual);
}

function bindSettings() {
  const brightness = document.getElementById('kb-brightness');
  const contrast = document.getElementById('kb-contrast');
  const brightnessValue = document.getElementById('kb-brightness-value');
  const contrastValue = document.getElementById('kb-contrast-value');
  const actual = document.getElementById('kb-actual-size');
  const reset = document.getElementById('kb-image-reset');
  const percent = (v) => `${Math.round(v * 100)}%`;
  const sync = () => {
    const s = app.state;
    brightness.value = String(s.bright);
    contrast.value = String(s.contrast);
    brightnessValue.textContent = percent(s.bright);
    contrastValue.textContent = percent(s.contrast);
    actual.checked = s.actual;
    reset.disabled = s.bright === 1 && s.contrast === 1;
    applySettings();
  };
  brightness.addEventListener('input', () => app.setState({ bright: Number(brightness.value) }));
  contrast.addEventListener('input', () => app.setState({ contrast: Number(contrast.value) }));
  actual.addEventListener('change', () => app.setState({ actual: actual.checked }));
  reset.addEventListener('click', () => app.setState({ bright: 1, contrast: 1 }));
  sync();
  return sync;
}

const board = createBoard({
  kind: 'images',
  closedKey: 'iclosed',
  gridClass: 'kb-grid--images',
  emptyTitle: 'No image summaries yet',
  emptyLines: [
    'Log some with tf.summary.image or SummaryWriter.add_image, or pass write_images=True ' +
      'to Keras’s TensorBoard callback; they appear here as soon as they are flushed.',
    codeBlock('writer.add_image("samples", chw_array, global_step=step)  # or dataformats="HWC"'),
  ],
  makeCard: (run, tag, info) => new ImageSet(run, tag, info),
});

registerBoard('images', board, {
  init(context) {
    panel = context.panel;
  },
  bindSettings,
});
