// Package avframe gives writable, copy-free views of FFmpeg frame planes
// and packet payloads. go-astiav v0.16.0 only copies them out; this and
// internal/opus are the places with cgo in singoff.
package avframe

//#cgo pkg-config: libavcodec libavutil
//#include <string.h>
//#include <libavcodec/avcodec.h>
//#include <libavutil/frame.h>
//
//static uint8_t *plane(AVFrame *f, int i) { return f->data[i]; }
//static int stride(AVFrame *f, int i) { return f->linesize[i]; }
//static int fill_packet(AVPacket *p, const uint8_t *data, int size) {
//	av_packet_unref(p);
//	int ret = av_new_packet(p, size);
//	if (ret < 0) return ret;
//	if (size > 0) memcpy(p->data, data, size);
//	return 0;
//}
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

func frame(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// packet reaches the AVPacket inside an astiav.Packet: in v0.16.0 the
// struct holds that pointer as its only field.
func packet(p *astiav.Packet) *C.AVPacket { return *(**C.AVPacket)(unsafe.Pointer(p)) }

// Plane returns plane i of f as rows*stride bytes; the view is valid until
// the frame's buffer is unreferenced.
func Plane(f *astiav.Frame, i, rows int) (data []byte, stride int) {
	c := frame(f)
	p := C.plane(c, C.int(i))
	s := int(C.stride(c, C.int(i)))
	if p == nil || s <= 0 || rows <= 0 {
		return nil, 0
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), rows*s), s
}

// FloatPlane returns channel plane i of a planar float audio frame.
func FloatPlane(f *astiav.Frame, i int) []float32 {
	c := frame(f)
	p := C.plane(c, C.int(i))
	if p == nil || f.NbSamples() <= 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), f.NbSamples())
}

// MakeWritable makes sure no one else (an encoder) still references f's
// buffer before it is drawn on again.
func MakeWritable(f *astiav.Frame) error {
	if ret := C.av_frame_make_writable(frame(f)); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

// FillPacket copies data into p with the zeroed padding decoders need to
// read past the end safely.
func FillPacket(p *astiav.Packet, data []byte) error {
	var ptr *C.uint8_t
	if len(data) > 0 {
		ptr = (*C.uint8_t)(unsafe.Pointer(&data[0]))
	}
	if ret := C.fill_packet(packet(p), ptr, C.int(len(data))); ret < 0 {
		return fmt.Errorf("avframe: filling packet: %w", astiav.Error(ret))
	}
	return nil
}

// PacketData returns p's payload without copying; valid until p is
// unreferenced.
func PacketData(p *astiav.Packet) []byte {
	c := packet(p)
	if c.data == nil || c.size <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data)), int(c.size))
}
