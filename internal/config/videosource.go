package config

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// VideoSourceKind is the kind of picture source.
type VideoSourceKind string

// Video source kinds.
const (
	VideoLavfi VideoSourceKind = "lavfi" // a libavfilter graph (test sources), paced to the wall clock
	VideoV4L2  VideoSourceKind = "v4l2"  // a V4L2 capture device
	VideoURL   VideoSourceKind = "url"   // a live stream read through libavformat (url:tcp://…), e.g. a camera's encoder on the LAN
)

// VideoSource is video.source: "lavfi:<filtergraph>", "url:<stream URL>" or a V4L2 device path
// (/dev/video0, /dev/v4l/by-id/…). The zero value is "not set".
type VideoSource struct {
	Kind VideoSourceKind
	Spec string // the filter graph, or the device path
}

// ParseVideoSource parses the written form.
func ParseVideoSource(s string) (VideoSource, error) {
	switch {
	case strings.HasPrefix(s, "lavfi:"):
		g := strings.TrimPrefix(s, "lavfi:")
		if strings.TrimSpace(g) == "" {
			return VideoSource{}, fmt.Errorf("empty lavfi filtergraph")
		}
		return VideoSource{Kind: VideoLavfi, Spec: g}, nil
	case strings.HasPrefix(s, "url:"):
		u := strings.TrimPrefix(s, "url:")
		if strings.TrimSpace(u) == "" {
			return VideoSource{}, fmt.Errorf("empty url")
		}
		return VideoSource{Kind: VideoURL, Spec: u}, nil
	case strings.HasPrefix(s, "/dev/") && path.Clean(s) == s && len(s) > len("/dev/"):
		return VideoSource{Kind: VideoV4L2, Spec: s}, nil
	}
	return VideoSource{}, fmt.Errorf("%q: must be lavfi:<filtergraph>, url:<stream URL> or a V4L2 device path such as /dev/video0", s)
}

// IsZero reports whether no source is set.
func (s VideoSource) IsZero() bool { return s == VideoSource{} }

// String is the written form, as onair-av's -source takes it.
func (s VideoSource) String() string {
	switch s.Kind {
	case VideoLavfi:
		return "lavfi:" + s.Spec
	case VideoURL:
		return "url:" + s.Spec
	}
	return s.Spec
}

// UnmarshalYAML parses with ParseVideoSource; an empty string leaves it unset.
func (s *VideoSource) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "must be a string: lavfi:<filtergraph>, url:<stream URL> or /dev/videoN")
	}
	if n.Value == "" {
		*s = VideoSource{}
		return nil
	}
	v, err := ParseVideoSource(n.Value)
	if err != nil {
		return typeError(n, "%v", err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the written form.
func (s VideoSource) MarshalYAML() (any, error) { return s.String(), nil }
