// The demo page keeps the open conversation in the URL (#thread=<id>), so a reload shows it again:
// the host app owns that choice, the widget only reports it (convo-thread-change).
const chat = document.querySelector('convo-chat');
const fromHash = new URLSearchParams(location.hash.slice(1)).get('thread');
if (fromHash) chat.setAttribute('thread', fromHash);
chat.addEventListener('convo-thread-change', (event) => {
  const id = event.detail.threadId;
  history.replaceState(null, '', id ? `#thread=${encodeURIComponent(id)}` : location.pathname + location.search);
});
