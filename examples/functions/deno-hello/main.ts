// An AionixFn Deno function: the default export receives (event, context).
interface Event {
  message?: string;
}

export default async function handler(event: Event | null, context: { function_version: string }) {
  const message = event?.message ?? "";
  console.log(`shouting ${message.length} characters`);
  return { shout: message.toUpperCase(), version: context.function_version };
}
