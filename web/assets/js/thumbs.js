// The battles' pictures on the home page: a live battle's latest program
// picture (/hls/{id}/thumb.jpg, at most 2 s old and cacheable for 2 s)
// and a past battle's picture from its recording (/vod/{id}/thumb.jpg).

// The server caches a live picture for 2 s: asking once per 2 s window
// gets a new one when there is one and lets every cache share it.
const LIVE_MS = 2000;

// The img of each battle shown, kept across refreshes so that a new
// live picture replaces the old one without a blank in between.
const shown = new Map();

// thumbURL is the picture of battle b, or "" when it has none: a
// waiting battle, or a past one without a recording.
export function thumbURL(b, now = Date.now()) {
  if (b.state === "live" && b.hls_url) {
    return `${b.hls_url.replace(/index\.m3u8$/, "thumb.jpg")}?t=${Math.floor(now / LIVE_MS)}`;
  }
  if (b.state === "ended" && b.vod_url) return b.vod_url.replace(/index\.m3u8$/, "thumb.jpg");
  return "";
}

// thumbnail is the img of battle b for a list of battles, or null.
export function thumbnail(b) {
  const src = thumbURL(b);
  if (!src) {
    shown.delete(b.id);
    return null;
  }
  let img = shown.get(b.id);
  if (!img) {
    img = document.createElement("img");
    img.className = "thumb";
    img.width = 160;
    img.height = 90;
    img.decoding = "async";
    // A picture that cannot be had leaves no broken image behind.
    img.addEventListener("error", () => { img.hidden = true; });
    img.addEventListener("load", () => { img.hidden = false; });
    shown.set(b.id, img);
  }
  img.alt = b.state === "live" ? `${b.title}: the picture now` : `${b.title}: a picture from the battle`;
  if (img.getAttribute("src") !== src) img.src = src;
  return img;
}
