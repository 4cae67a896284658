// Command loadgen will drive N publishers and M subscribers over real WebRTC
// against a running gateway. It is not built yet; see the SFU hot-path issue.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "loadgen: not available yet (needs the live room and SFU)")
	os.Exit(2)
}
