// Plays an HLS playlist in a video element with hls.js wherever the
// browser has Media Source Extensions (Chromium claims native HLS but
// must not get it), the native player only where hls.js cannot run (iOS
// Safari). ?player=shaka or ?player=videojs in the page's address plays
// with Shaka Player or video.js instead: the tests prove the program
// plays in each (players.js).
import { start } from "./players.js";

// chosenPlayer is the player the page's address asks for, or "hls.js".
export function chosenPlayer() {
  const asked = new URLSearchParams(location.search).get("player");
  return asked === "shaka" || asked === "videojs" ? asked : "hls.js";
}

// play attaches url to video. live turns on LL-HLS low-latency mode.
// onFatal(message) is called when playback cannot go on; the caller
// decides whether to start again. onCue(cue) gets the battle's events
// the playlist carries (players.js). It resolves to the player, or null
// when nothing can play (onFatal has been called). The video element
// says which player plays it in data-player.
export async function play(video, url, { live, onFatal, onCue }) {
  const player = await start(chosenPlayer(), video, url, { live, onFatal, onCue });
  if (player) video.dataset.player = player.name;
  return player;
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
