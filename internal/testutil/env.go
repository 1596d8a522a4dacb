package testutil

import "os"

var getenv = os.Getenv
