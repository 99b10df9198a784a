// The offline page goes back to the app as soon as the network returns.
window.addEventListener("online", () => window.location.assign("/"));
