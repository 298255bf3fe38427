package engineio_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/collabd/collabd/sockets/engineio"
)

// An echo server: every message goes back to its sender.
func Example() {
	srv := engineio.NewServer(engineio.Config{
		OnConnection: func(c *engineio.Conn) {
			c.OnMessage(func(data []byte, binary bool) {
				data = append([]byte(nil), data...) // data is only valid during the call
				if binary {
					_ = c.Send(engineio.NewBinaryMessage(data))
				} else {
					_ = c.Send(engineio.NewTextMessage(data))
				}
			})
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	// A long-polling client: handshake, send a message, poll the echo.
	body := func(resp *http.Response) string {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	resp, _ := http.Get(ts.URL + "/engine.io/?EIO=4&transport=polling")
	open := body(resp)
	sid := open[strings.Index(open, `"sid":"`)+7:][:20]
	url := ts.URL + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	resp, _ = http.Post(url, "text/plain", strings.NewReader("4hello"))
	fmt.Println(body(resp))
	resp, _ = http.Get(url)
	fmt.Println(body(resp))
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// ok
	// 4hello
}
