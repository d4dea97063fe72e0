// The HLS players the pages can play with, behind one small interface.
// hls.js is the pages' player; Shaka Player and video.js (VHS) are here
// so that the program is proven to play in every common web player
// (?player=shaka, ?player=videojs); the browser's own player is the last
// resort where Media Source Extensions are missing (iOS Safari).
//
// Each start function takes the video element, the playlist's URL and
// {live, onFatal, onCue} and resolves to a player:
//   name         "hls.js", "shaka", "videojs" or "native"
//   latency()    seconds behind the playlist's live edge (a live stream,
//                or a recording still being made), or null
//   dateAt(t)    the program's wall-clock time (a Date) shown at media
//                time t, from EXT-X-PROGRAM-DATE-TIME, or null
//   timeAt(date) the media time showing date, or null
//   levels()     the ladder as [{width, height, bitrate}], or []
//   level()      the index in levels() playing now, -1 when unknown
//   setLevel(i)  plays rung i from now on; -1 chooses by the network
//   destroy()
// onFatal(reason) is called once when playback cannot go on. onCue(cue)
// is called with each EXT-X-DATERANGE the playlist carries, as
// {id, class, start, end, data}: start and end on the media timeline in
// seconds (end Infinity when open), data the client attributes without
// their X- prefix ({ROUND: "2", SLOT: "1"}); it may be called again for
// the same id when the player moves its timeline.

// loadHls imports the vendored hls.js; the build copies it in, so a
// missing file means a build step was skipped.
export async function loadHls() {
  try {
    return (await import("/assets/vendor/hls.min.mjs")).default;
  } catch (err) {
    console.error("singoff: loading hls.js", err);
    return null;
  }
}

// loadScript runs a vendored script that is not a module (Shaka Player's
// and video.js's builds define a global), once.
const scripts = new Map();
function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`loading ${src}`));
      document.head.append(s);
    }));
  }
  return scripts.get(src);
}

// clientData is a date range's X- attributes, named without the prefix.
function clientData(entries) {
  const data = {};
  for (const [key, value] of entries) {
    if (key.startsWith("X-")) data[key.slice(2)] = String(value);
  }
  return data;
}

// dateFromFragments maps media time t to the program's clock through a
// list of {start, duration, date (ms)} pieces in order, null before
// them. The program's clock runs on without gaps, so a time past the
// last piece (in the parts of a segment not finished yet, at the live
// edge) is dated from it.
function dateFromFragments(pieces, t) {
  const p = pieces.findLast((f) => f.start <= t);
  return p ? new Date(p.date + (t - p.start) * 1000) : null;
}

// timeFromFragments is the reverse: a date before the first piece is at
// its start (the oldest moment there is), one after the last is null
// (not there yet).
function timeFromFragments(pieces, date) {
  const ms = date.getTime();
  if (pieces.length && ms < pieces[0].date) return pieces[0].start;
  const p = pieces.find((f) => f.date <= ms && ms < f.date + f.duration * 1000);
  return p ? p.start + (ms - p.date) / 1000 : null;
}

// STEP_DOWN_* tune guardStepDown: a part or segment whose bytes take
// longer than STEP_DOWN_SLOW × the media they bring (from the first byte;
// twice that from the request when none has come), with less than
// STEP_DOWN_BUFFER seconds ahead, moves the player down; it stays down
// for STEP_DOWN_HOLD_MS, twice as long each time it had to come down
// again, up to STEP_DOWN_HOLD_MAX_MS.
const STEP_DOWN_SLOW = 1.5;
const STEP_DOWN_BUFFER = 1.5;
const STEP_DOWN_HOLD_MS = 10000;
const STEP_DOWN_HOLD_MAX_MS = 80000;

// guardStepDown moves hls.js down the ladder as soon as the network
// stops keeping up. hls.js alone reacts late at the live edge of LL-HLS:
// it subtracts its (blocking-reload) time to first byte from each part's
// load, so slow parts still look fast, and its emergency switch never
// goes down to the lowest rung; with about a second of buffer the
// picture would stop. When the bytes of a part of the rung playing come
// slower than the part plays, the load is given up and the same part
// loaded from the next rung down, the bandwidth estimate is reset to
// what the load measured and the rungs above are left out for a while
// (small parts of a low rung look fast too, and would take hls.js
// straight back up); then hls.js's own rules try higher again.
function guardStepDown(Hls, hls) {
  let loading = null;
  let hold = STEP_DOWN_HOLD_MS;
  let holding = 0;
  let heldUntil = 0;
  const main = (frag) => frag.type === "main" && Number.isFinite(frag.sn);
  const lowAhead = () => (hls.mainForwardBufferInfo?.len ?? 0) < STEP_DOWN_BUFFER;
  const stepDown = (level, bps) => {
    const now = performance.now();
    if (!hls.autoLevelEnabled || level <= hls.minAutoLevel || level > hls.maxAutoLevel) return false;
    // Down again soon after the last hold ended: hold longer.
    hold = now < heldUntil + hold ? Math.min(2 * hold, STEP_DOWN_HOLD_MAX_MS) : STEP_DOWN_HOLD_MS;
    heldUntil = now + hold;
    hls.bandwidthEstimate = bps;
    hls.autoLevelCapping = level - 1;
    hls.nextLoadLevel = level - 1;
    clearTimeout(holding);
    holding = setTimeout(() => { hls.autoLevelCapping = -1; }, hold);
    return true;
  };
  // slowFor is the bit rate of a load of duration seconds of media that
  // is too slow at now, or null.
  const slowFor = (stats, duration, now) => {
    const limit = STEP_DOWN_SLOW * duration * 1000;
    const since = stats.loading.first > 0 ? stats.loading.first : stats.loading.start;
    const took = now - since;
    if (took <= (stats.loading.first > 0 ? limit : 2 * limit) || !lowAhead()) return null;
    return (Math.max(stats.loaded, 1) * 8000) / took;
  };
  hls.on(Hls.Events.FRAG_LOADING, (_e, { frag, part }) => {
    loading = main(frag) ? { frag, part } : null;
  });
  hls.on(Hls.Events.FRAG_LOADED, (_e, { frag, part }) => {
    loading = null;
    if (!main(frag)) return;
    const { stats } = part ?? frag;
    const bps = slowFor(stats, (part ?? frag).duration, stats.loading.end);
    if (bps !== null) stepDown(frag.level, bps);
  });
  // A load still under way that is already too slow: given up, so that
  // the next rung down gets the whole network at once (hls.js's own
  // emergency switch does the same).
  const timer = setInterval(() => {
    if (!loading) return;
    const { frag, part } = loading;
    const { stats } = part ?? frag;
    if (stats.aborted) return;
    const bps = slowFor(stats, (part ?? frag).duration, performance.now());
    if (bps === null || !stepDown(frag.level, bps)) return;
    loading = null;
    frag.abortRequests();
    hls.trigger(Hls.Events.FRAG_LOAD_EMERGENCY_ABORTED, { frag, part, stats });
  }, 20);
  hls.on(Hls.Events.DESTROYING, () => {
    clearInterval(timer);
    clearTimeout(holding);
  });
}

// pictureLead is how far the first picture of hls.js fragment f comes
// after f.start, in seconds. hls.js starts a fragment at its earliest
// sample, and in the program's segments the audio starts a few frames
// before the first picture, while EXT-X-PROGRAM-DATE-TIME dates the
// picture: a date placed from f.start alone comes those frames early.
// A fragment not parsed yet takes the lead of the latest one parsed
// among frags (the muxer's, nearly the same in every segment).
function pictureLead(frags, f) {
  const lead = (x) => {
    const video = x?.elementaryStreams?.video;
    return video && Number.isFinite(video.startPTS) && Number.isFinite(x.start) ? Math.max(0, video.startPTS - x.start) : null;
  };
  const own = lead(f);
  if (own !== null) return own;
  for (let i = (frags?.length ?? 0) - 1; i >= 0; i--) {
    const other = lead(frags[i]);
    if (other !== null) return other;
  }
  return 0;
}

// UNSTICK_* tune unstickVideo: a picture that has not changed while
// UNSTICK_AFTER seconds of media played is stuck; a nudge that did not
// help is tried again after UNSTICK_AGAIN seconds more.
const UNSTICK_AFTER = 0.4;
const UNSTICK_AGAIN = 1;

// unstickVideo keeps the picture going when Chromium stops decoding
// video while the sound plays on. That happens right after hls.js
// switches rungs within a segment and back (up, then down again at
// once): the parts that follow belong to a keyframe the other rung's
// part replaced, and Chromium, unable to decode them, showed the last
// picture for about 3 s, past the next keyframes. Moving the playhead by
// a microsecond makes it flush its video pipeline and decode again from
// the next keyframe, without a break in the sound (hls.js does the same
// at holes between separate video and audio buffers; the program's
// segments carry both in one). It returns what stops it.
function unstickVideo(video) {
  let frames = -1;
  let from = 0; // the media time when the picture last changed, or was nudged
  let wait = UNSTICK_AFTER;
  const timer = setInterval(() => {
    const decoded = video.getVideoPlaybackQuality?.().totalVideoFrames;
    if (decoded === undefined) return;
    const now = video.currentTime;
    // A hidden page's video is not decoded (Chromium saves the work
    // while the sound plays on): nothing is stuck there.
    if (decoded !== frames || video.paused || video.seeking || document.hidden || now < from) {
      frames = decoded;
      from = now;
      wait = UNSTICK_AFTER;
      return;
    }
    if (now - from < wait) return;
    video.currentTime = now + 0.000001;
    from = now;
    wait = UNSTICK_AGAIN;
  }, 100);
  return () => clearInterval(timer);
}

// startHlsJs plays with hls.js; Hls is the loaded class.
export function startHlsJs(Hls, video, url, { live, onFatal, onCue = () => {} }) {
  const hls = new Hls({
    lowLatencyMode: live,
    // Start on the rung the network fits: hls.js measures it with a
    // part of the smallest rung first.
    startLevel: -1,
    // Catch up when behind the live edge instead of drifting.
    maxLiveSyncPlaybackRate: live ? 1.5 : 1,
    // A stall moves the target back by this much (hls.js: 1 s); a
    // smaller step keeps a battle closer to live after a hiccup.
    liveSyncOnStallIncrease: 0.5,
    backBufferLength: live ? 30 : Infinity,
    // Estimate the network over a short memory: with ~1 s of buffer at
    // the live edge, a slow network must move the player down within
    // a few parts, not after the picture has stopped.
    abrEwmaFastLive: 1,
    abrEwmaSlowLive: 3,
  });
  let mediaRecoveries = 0;
  let failed = false;
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal || failed) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 3) {
      mediaRecoveries++;
      hls.recoverMediaError();
      return;
    }
    failed = true;
    onFatal(`${data.type}: ${data.details}`);
  });
  const sendCues = (_event, { details }) => {
    for (const range of Object.values(details?.dateRanges ?? {})) {
      const start = range.startTime + pictureLead(details.fragments, range.tagAnchor);
      if (!range.isValid || !Number.isFinite(start)) continue;
      onCue({
        id: range.id,
        class: range.class ?? "",
        start,
        end: range.duration != null ? start + range.duration : Infinity,
        data: clientData(Object.entries(range.attr)),
      });
    }
  };
  if (live) guardStepDown(Hls, hls);
  hls.on(Hls.Events.DESTROYING, unstickVideo(video));
  hls.on(Hls.Events.LEVEL_UPDATED, sendCues);
  hls.on(Hls.Events.LEVEL_PTS_UPDATED, sendCues);
  const fragments = () => {
    const frags = (hls.levels[hls.currentLevel] ?? hls.levels[0])?.details?.fragments ?? [];
    return frags.filter((f) => Number.isFinite(f.programDateTime)).map((f) => {
      const lead = pictureLead(frags, f);
      return { start: f.start + lead, duration: f.duration, date: f.programDateTime };
    });
  };
  hls.loadSource(url);
  hls.attachMedia(video);
  return {
    name: "hls.js",
    latency: () => (hls.levels[hls.currentLevel]?.details?.live && Number.isFinite(hls.latency) ? hls.latency : null),
    dateAt: (t) => dateFromFragments(fragments(), t),
    timeAt: (date) => timeFromFragments(fragments(), date),
    levels: () => hls.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate })),
    level: () => hls.currentLevel,
    setLevel: (i) => { hls.currentLevel = i; },
    destroy: () => hls.destroy(),
  };
}

// startShaka plays with Shaka Player (its HLS build).
async function startShaka(video, url, { live, onFatal, onCue = () => {} }) {
  await loadScript("/assets/vendor/shaka-player.hls.js");
  const shaka = window.shaka;
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) throw new Error("Shaka Player does not support this browser");
  const player = new shaka.Player();
  let failed = false;
  const fail = (reason) => {
    if (failed) return;
    failed = true;
    onFatal(reason);
  };
  player.addEventListener("error", (e) => {
    const err = e.detail;
    if (err?.severity === shaka.util.Error.Severity.CRITICAL) fail(`shaka error ${err.code}`);
  });
  player.addEventListener("timelineregionadded", (e) => {
    const r = e.detail;
    onCue({
      id: r.id,
      class: r.schemeIdUri,
      start: r.startTime,
      end: r.endTime ?? Infinity,
      data: clientData(r.values.map((v) => [v.key, v.data])),
    });
  });
  await player.attach(video);
  player.configure({ streaming: { lowLatencyMode: live } });
  player.load(url).catch((err) => fail(`shaka load error ${err?.code ?? err}`));
  const start = () => player.getPresentationStartTimeAsDate();
  return {
    name: "shaka",
    latency: () => {
      if (!player.isLive()) return null;
      const behind = player.seekRange().end - video.currentTime;
      return Number.isFinite(behind) ? behind : null;
    },
    dateAt: (t) => (start() ? new Date(start().getTime() + t * 1000) : null),
    timeAt: (date) => (start() ? Math.max(player.seekRange().start, (date.getTime() - start().getTime()) / 1000) : null),
    levels: () => player.getVariantTracks()
      .map((v) => ({ width: v.width, height: v.height, bitrate: v.bandwidth })),
    level: () => player.getVariantTracks().findIndex((v) => v.active),
    setLevel: (i) => {
      player.configure({ abr: { enabled: i < 0 } });
      const track = player.getVariantTracks()[i];
      if (track) player.selectVariantTrack(track, true);
    },
    destroy: () => { player.destroy(); },
  };
}

// startVideoJs plays with video.js and its VHS. video.js wraps the
// element in its own box and renames it; the page keeps its element:
// the box is made here and the element's name and attributes are given
// back, also when the player goes.
async function startVideoJs(video, url, { onFatal, onCue = () => {} }) {
  // No <style> elements: the pages' Content-Security-Policy has none.
  window.VIDEOJS_NO_DYNAMIC_STYLE = true;
  await loadScript("/assets/vendor/video.min.js");
  const attributes = [...video.attributes].map((a) => [a.name, a.value]);
  const place = document.createComment("video.js");
  video.before(place);
  const box = document.createElement("div");
  box.setAttribute("data-vjs-player", "");
  place.after(box);
  box.append(video);
  const player = window.videojs(video, {
    // The page's own controls and the element's; none of video.js's
    // (its style sheet is not loaded).
    children: ["mediaLoader", "liveTracker"],
    controls: false,
    // VHS's LL-HLS (llhls, on by default) leaves a hole of a few
    // frames at every segment boundary of the program, whose audio
    // starts a little before its first picture, and Chromium freezes the
    // picture on each for 3 s: video.js plays the whole segments.
    html5: { vhs: { overrideNative: true, llhls: false }, nativeAudioTracks: false, nativeVideoTracks: false },
  });
  box.removeAttribute("id");
  const restore = () => {
    for (const a of [...video.attributes]) video.removeAttribute(a.name);
    for (const [name, value] of attributes) video.setAttribute(name, value);
  };
  restore();
  let failed = false;
  player.on("error", () => {
    if (failed) return;
    failed = true;
    onFatal(`video.js error ${player.error()?.code ?? ""}: ${player.error()?.message ?? ""}`);
  });
  const vhs = () => player.tech({ IWillNotUseThisInPlugins: true })?.vhs;
  // VHS dates the ranges of each playlist it loads (startTime, on its
  // timeline) and names their attributes in camel case: X-VOTES-1 is
  // xVotes1.
  const fromCamel = (key) => key.slice(1).replace(/[A-Z]|[0-9]+/g, (m) => `-${m}`).slice(1).toUpperCase();
  const sendCues = () => {
    for (const r of vhs()?.playlists?.media()?.dateRanges ?? []) {
      if (!Number.isFinite(r.startTime)) continue;
      const data = {};
      for (const [key, value] of Object.entries(r)) {
        if (/^x[A-Z0-9]/.test(key)) data[fromCamel(key)] = String(value);
      }
      onCue({
        id: r.id,
        class: r.class ?? "",
        start: r.startTime,
        end: r.duration != null ? r.startTime + r.duration : Infinity,
        data,
      });
    }
  };
  player.one("loadedmetadata", () => {
    vhs()?.playlists?.on("loadedplaylist", sendCues);
    sendCues();
  });
  const fragments = () => (vhs()?.playlists?.media()?.segments ?? [])
    .filter((s) => s.dateTimeObject && Number.isFinite(s.start))
    .map((s) => ({ start: s.start, duration: s.duration, date: s.dateTimeObject.getTime() }));
  player.src({ src: url, type: "application/x-mpegURL" });
  return {
    name: "videojs",
    latency: () => {
      if (!player.liveTracker?.isLive()) return null;
      const behind = player.liveTracker.liveCurrentTime() - video.currentTime;
      return Number.isFinite(behind) ? behind : null;
    },
    dateAt: (t) => dateFromFragments(fragments(), t),
    timeAt: (date) => timeFromFragments(fragments(), date),
    levels: () => [...(player.qualityLevels?.() ?? [])]
      .map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate })),
    level: () => player.qualityLevels?.().selectedIndex ?? -1,
    setLevel: (i) => {
      const levels = player.qualityLevels?.();
      if (!levels) return;
      for (let j = 0; j < levels.length; j++) levels[j].enabled = i < 0 || j === i;
    },
    destroy: () => {
      // dispose takes the element out of the page: it goes back where
      // it was, as it was.
      player.dispose();
      place.replaceWith(video);
      box.remove();
      restore();
    },
  };
}

// startNative plays with the browser's own HLS player (Safari).
function startNative(video, url, { onFatal }) {
  video.src = url;
  video.addEventListener("error", () => onFatal("the player stopped"), { once: true });
  const startDate = () => {
    const d = video.getStartDate?.();
    return d instanceof Date && Number.isFinite(d.getTime()) ? d : null;
  };
  return {
    name: "native",
    latency: () => (video.duration === Infinity && video.seekable.length
      ? video.seekable.end(video.seekable.length - 1) - video.currentTime : null),
    dateAt: (t) => (startDate() ? new Date(startDate().getTime() + t * 1000) : null),
    timeAt: (date) => (startDate() ? Math.max(0, (date.getTime() - startDate().getTime()) / 1000) : null),
    levels: () => [],
    level: () => -1,
    setLevel: () => {},
    destroy: () => {
      video.removeAttribute("src");
      video.load();
    },
  };
}

// start plays url in video with the player named by which ("hls.js",
// "shaka", "videojs"); hls.js is the default wherever it runs, the
// browser's own player where it does not. It resolves to the player, or
// null after onFatal when nothing can play.
export async function start(which, video, url, options) {
  try {
    if (which === "shaka") return await startShaka(video, url, options);
    if (which === "videojs") return await startVideoJs(video, url, options);
  } catch (err) {
    options.onFatal(`${which}: ${err.message}`);
    return null;
  }
  const Hls = await loadHls();
  // Chromium claims native HLS ("maybe"): hls.js wherever it can run.
  if (Hls?.isSupported()) return startHlsJs(Hls, video, url, options);
  if (video.canPlayType("application/vnd.apple.mpegurl")) return startNative(video, url, options);
  options.onFatal(Hls ? "this browser cannot play HLS" : "the player (hls.js) is missing from this server");
  return null;
}
