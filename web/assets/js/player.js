// Plays an HLS playlist in a video element: hls.js wherever the browser
// has Media Source Extensions (Chromium claims native HLS but must not get
// it), the native player only where hls.js cannot run (iOS Safari).

// loadHls imports the vendored hls.js; the build copies it in, so a
// missing file means a build step was skipped.
async function loadHls() {
  try {
    return (await import("/assets/vendor/hls.min.mjs")).default;
  } catch (err) {
    console.error("singoff: loading hls.js", err);
    return null;
  }
}

// play attaches url to video. live turns on LL-HLS low-latency mode.
// onFatal(message) is called when playback cannot go on; the caller
// decides whether to start again. It returns {latency(), destroy()}.
export async function play(video, url, { live, onFatal }) {
  const Hls = await loadHls();
  if (Hls?.isSupported()) {
    const hls = new Hls({
      lowLatencyMode: live,
      // Catch up when behind the live edge instead of drifting.
      maxLiveSyncPlaybackRate: live ? 1.5 : 1,
      // A stall moves the target back by this much (hls.js: 1 s); a
      // smaller step keeps a battle closer to live after a hiccup.
      liveSyncOnStallIncrease: 0.5,
      backBufferLength: live ? 30 : Infinity,
    });
    let mediaRecoveries = 0;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 3) {
        mediaRecoveries++;
        hls.recoverMediaError();
        return;
      }
      onFatal(`${data.type}: ${data.details}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return {
      latency: () => (live && Number.isFinite(hls.latency) ? hls.latency : null),
      destroy: () => hls.destroy(),
    };
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.addEventListener("error", () => onFatal("the player stopped"), { once: true });
    return {
      latency: () => (live && video.seekable.length ? video.seekable.end(video.seekable.length - 1) - video.currentTime : null),
      destroy: () => {
        video.removeAttribute("src");
        video.load();
      },
    };
  }
  onFatal(Hls ? "this browser cannot play HLS" : "the player (hls.js) is missing from this server");
  return null;
}

// exists tells whether the playlist at url can be fetched yet.
export async function exists(url) {
  try {
    const res = await fetch(url, { cache: "no-store" });
    return res.ok;
  } catch {
    return false;
  }
}
