"""Customer service inside the warehouse: shoppers, tickets from every channel, the agent console, returns,
exchanges, refunds and the shopper's tracking page."""
