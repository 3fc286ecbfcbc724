package sim

import (
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Prompt length limits in characters (runes).
const (
	promptMinChars = 3
	promptMaxChars = 2500
)

// createRequest is the body of a create call. Unknown fields are ignored.
type createRequest struct {
	RequestType string      `json:"request_type"`
	CallbackURL string      `json:"callback_url"`
	Provider    string      `json:"provider"`
	Input       createInput `json:"input"`
}

// createInput is the "input" object of a create call.
type createInput struct {
	Mode        string   `json:"mode"`
	Prompt      string   `json:"prompt"`
	ImageURLs   []string `json:"image_urls"`
	Resolution  string   `json:"resolution"`
	Duration    int      `json:"duration"`
	AspectRatio string   `json:"aspect_ratio"`
	Sound       *bool    `json:"sound"`
	FixedLens   *bool    `json:"fixed_lens"`
}

// requestTypeCallback is the request_type of a task whose outcome is POSTed
// to its callback_url.
const requestTypeCallback = "callback"

var (
	requestTypes = []string{"", "async", requestTypeCallback}
	providers    = []string{"", "auto", "value", "official"}
	resolutions  = []string{"480p", "720p"}
	aspectRatios = []string{"", "1:1", "16:9", "9:16", "21:9", "4:3", "3:4"}
)

// validate returns the provider's 400 message for the first invalid field of
// req, or "" when req is valid.
func (req *createRequest) validate() string {
	in := &req.Input
	switch {
	case !slices.Contains(requestTypes, req.RequestType):
		return `request_type must be "async" or "callback"`
	case req.RequestType == requestTypeCallback && req.CallbackURL == "":
		return "callback_url is required when request_type is callback"
	case req.RequestType == requestTypeCallback && !isHTTPURL(req.CallbackURL):
		return "callback_url must be an absolute http or https URL"
	case !slices.Contains(providers, req.Provider):
		return `provider must be "auto", "value" or "official"`
	case in.Mode != "text-to-video" && in.Mode != "image-to-video":
		return `input.mode must be "text-to-video" or "image-to-video"`
	}
	if n := utf8.RuneCountInString(in.Prompt); n < promptMinChars || n > promptMaxChars {
		return "input.prompt must be 3 to 2500 characters, got " + strconv.Itoa(n)
	}
	switch {
	case in.Mode == "text-to-video" && len(in.ImageURLs) > 0:
		return "input.image_urls is only allowed with image-to-video"
	case in.Mode == "image-to-video" && len(in.ImageURLs) == 0:
		return "input.image_urls is required for image-to-video"
	case len(in.ImageURLs) > 2:
		return "input.image_urls must hold 1 or 2 URLs"
	}
	for i, u := range in.ImageURLs {
		if !isHTTPURL(u) {
			return "input.image_urls[" + strconv.Itoa(i) + "] must be an http or https URL"
		}
	}
	_, knownDuration := generationRange[in.Duration]
	switch {
	case !slices.Contains(resolutions, in.Resolution):
		return `input.resolution must be "480p" or "720p"`
	case !knownDuration:
		return "input.duration must be 4, 8 or 12"
	case !slices.Contains(aspectRatios, in.AspectRatio):
		return "input.aspect_ratio must be one of 1:1, 16:9, 9:16, 21:9, 4:3, 3:4"
	}
	return ""
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
