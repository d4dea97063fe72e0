package e2e

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// BenchmarkGlassToGlass measures how far behind the wall clock an
// hls.js watcher shows the bots' pictures. Each bot draws its capture
// time across the top of its picture: 32 blocks, block i white when bit
// 31-i of the Unix milliseconds (mod 2^32) is set. The page reads the
// blocks back from the playing video through a canvas on every frame
// presented and compares them with Date.now(). One op is 20 s of
// watching: run it with -benchtime 1x. Bar: ≤ 1.5 s.
func BenchmarkGlassToGlass(b *testing.B) {
	s := startServer(b, false)
	bt := s.createBattle(b, "latency")
	s.startBot(b, bt, 1)
	s.startBot(b, bt, 2)
	br := newBrowser(b, false)
	watch := br.open("watch", s.base+"/b/"+bt.ID)
	watch.waitPlaying("#program", 60*time.Second)
	// Let hls.js settle on its live edge before measuring.
	time.Sleep(5 * time.Second)

	var slot1, slot2, behindLive []float64
	for b.Loop() {
		var res struct {
			Slot1   []float64 `json:"slot1"`
			Slot2   []float64 `json:"slot2"`
			Frames  int       `json:"frames"`
			Latency []float64 `json:"hlsLatency"`
			Status  string    `json:"status"`
		}
		ctx, cancel := context.WithTimeout(watch.ctx, 60*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(measureJS, &res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}))
		cancel()
		if err != nil {
			b.Fatalf("measuring: %v", err)
		}
		if len(res.Slot1)+len(res.Slot2) < res.Frames/4 {
			b.Fatalf("read the clock code from only %d+%d of %d frames (page status %q): is the bot drawing it?",
				len(res.Slot1), len(res.Slot2), res.Frames, res.Status)
		}
		slot1 = append(slot1, res.Slot1...)
		slot2 = append(slot2, res.Slot2...)
		behindLive = append(behindLive, res.Latency...)
	}
	watch.screenshot("measured")
	for _, m := range []struct {
		name string
		ms   []float64
	}{{"slot1", slot1}, {"slot2", slot2}, {"hlsjs-behind-live", behindLive}} {
		if len(m.ms) == 0 {
			continue
		}
		sort.Float64s(m.ms)
		b.Logf("glass-to-glass %s: p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d samples",
			m.name, percentile(m.ms, 0.50), percentile(m.ms, 0.95), m.ms[len(m.ms)-1], len(m.ms))
		b.ReportMetric(percentile(m.ms, 0.50), m.name+"-p50-ms")
		b.ReportMetric(percentile(m.ms, 0.95), m.name+"-p95-ms")
	}
	b.ReportMetric(0, "ns/op") // the measuring window, not a figure
}

func percentile(sorted []float64, p float64) float64 {
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

// measureJS samples the program for 20 s. The strip of either half is
// found by scanning rows for a stable, plausible code; each half's
// picture is the full 640 pixels wide.
const measureJS = `(async () => {
	const v = document.getElementById("program");
	const c = document.createElement("canvas");
	c.width = v.videoWidth;
	c.height = v.videoHeight;
	const g = c.getContext("2d", { willReadFrequently: true });
	const half = c.width / 2;
	const out = { slot1: [], slot2: [], frames: 0, hlsLatency: [], status: "" };
	const rows = [null, null];

	const decodeRow = (img, x0, y) => {
		let code = 0;
		for (let i = 0; i < 32; i++) {
			const x = Math.floor(x0 + (i + 0.5) * half / 32);
			const p = (y * c.width + x) * 4;
			// Luma: what the bot drew, whatever chroma the block carries.
			const lum = 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2];
			if (lum > 80 && lum < 175) return null;
			code = (code * 2) + (lum >= 175 ? 1 : 0);
		}
		return code;
	};
	const plausible = (code, now) => code !== null && ((now - code) % 4294967296 + 4294967296) % 4294967296 < 60000;
	const behind = (code, now) => ((now - code) % 4294967296 + 4294967296) % 4294967296;
	// findRow scans for the middle of the longest run of rows that decode
	// to the same plausible code.
	const findRow = (img, x0, now) => {
		let best = null, runStart = 0, runCode = null, bestLen = 0;
		for (let y = 0; y < c.height / 2; y++) {
			const code = decodeRow(img, x0, y);
			const ok = plausible(code, now);
			if (ok && code === runCode) {
				if (y - runStart + 1 > bestLen) { bestLen = y - runStart + 1; best = Math.floor((runStart + y) / 2); }
			} else {
				runStart = y;
				runCode = ok ? code : null;
			}
		}
		return bestLen >= 4 ? best : null;
	};

	let measuring = true;
	await new Promise((done) => {
		// Frames may stall; the clock still ends the measurement.
		setTimeout(() => { measuring = false; done(); }, 20000);
		const onFrame = () => {
			if (!measuring) return;
			const now = Date.now() % 4294967296;
			g.drawImage(v, 0, 0, c.width, c.height);
			const img = g.getImageData(0, 0, c.width, c.height / 2);
			out.frames++;
			// The page's own "behind live" figure, from hls.js.
			const shown = parseFloat(document.getElementById("latency").textContent);
			if (out.frames % 15 === 0 && Number.isFinite(shown)) out.hlsLatency.push(shown * 1000);
			for (const slot of [0, 1]) {
				const x0 = slot * half;
				if (rows[slot] === null) rows[slot] = findRow(img, x0, now);
				if (rows[slot] === null) continue;
				const code = decodeRow(img, x0, rows[slot]);
				if (plausible(code, now)) (slot ? out.slot2 : out.slot1).push(behind(code, now));
				else rows[slot] = null;
			}
			v.requestVideoFrameCallback(onFrame);
		};
		v.requestVideoFrameCallback(onFrame);
	});
	out.status = document.getElementById("status").textContent;
	return out;
})()`
